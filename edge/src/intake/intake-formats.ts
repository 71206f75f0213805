/**
 * The body formats `POST /ingest/<topic>` takes, each turned into one topic-addressed message that
 * the sensors' decoders read as they read an MQTT payload. No I/O.
 *
 * - plain: the body is the payload and the path's topic is the topic (a number, JSON, SenML: the
 *   decoder of the sensor that matches the topic reads it).
 * - Sensor.Community (airRohr firmware, "send to own API"): recognised by its `X-Sensor` header; the
 *   body's `sensordatavalues` [{value_type, value}] become one flat JSON object `{ <value_type>: value }`
 *   on the topic `<topic>/<X-Sensor>`, or `<topic>/<X-Sensor>/<X-Pin>` when the request names a pin.
 * - The Things Network (v3 webhook, uplink message): recognised by `end_device_ids` and
 *   `uplink_message` in a JSON body; `uplink_message.decoded_payload` becomes the payload on
 *   `<topic>/<device_id>`, timed by the network's receipt (`uplink_message.received_at`) unless the
 *   decoded payload carries its own time. Other TTN messages (join, downlink events) store nothing.
 */
export type IntakeFormat = 'plain' | 'sensor_community' | 'ttn';

export type IntakeMessage =
  | {
      ok: true;
      format: IntakeFormat;
      topic: string;
      payload: Uint8Array;
      /** The time of readings without one of their own, when the carrier knows it. */
      carrierTimeMs?: number;
      /** True for a message that carries no readings by its kind (a TTN join event). */
      empty?: boolean;
    }
  | { ok: false; format: IntakeFormat; reason: string };

export interface IntakeRequest {
  topic: string;
  body: Uint8Array;
  /** Header values, lower-case names. */
  header(name: string): string | undefined;
}

/** One topic level a header or a device id may add: no MQTT wildcard, separator or control character. */
const TOPIC_LEVEL = /^[A-Za-z0-9_.:@-]{1,128}$/;

export function parseIntake(req: IntakeRequest): IntakeMessage {
  const node = req.header('x-sensor');
  if (node !== undefined) return sensorCommunity(req, node);
  // Only a body that starts as a JSON object can be a TTN message; numbers and arrays skip the parse.
  if (firstNonSpace(req.body) === 0x7b) {
    const doc = parseJson(req.body);
    if (isObject(doc) && isObject(doc.end_device_ids)) return ttn(req.topic, doc);
  }
  return { ok: true, format: 'plain', topic: req.topic, payload: req.body };
}

function sensorCommunity(req: IntakeRequest, node: string): IntakeMessage {
  const format = 'sensor_community';
  const fail = (reason: string): IntakeMessage => ({ ok: false, format, reason });
  if (!TOPIC_LEVEL.test(node))
    return fail('X-Sensor must be a node name such as esp8266-12345678 (letters, digits, . _ - : @)');
  const pin = req.header('x-pin');
  if (pin !== undefined && !/^\d{1,3}$/.test(pin)) return fail('X-Pin must be a pin number such as 1 or 7');
  const doc = parseJson(req.body);
  if (doc === undefined) return fail('Sensor.Community body is not JSON');
  if (!isObject(doc) || !Array.isArray(doc.sensordatavalues))
    return fail('Sensor.Community body has no sensordatavalues array');
  const values: Record<string, number | string> = {};
  for (const [i, entry] of doc.sensordatavalues.entries()) {
    if (!isObject(entry) || typeof entry.value_type !== 'string' || entry.value_type === '')
      return fail(`sensordatavalues[${i}] has no value_type`);
    const { value } = entry;
    if (typeof value === 'number') values[entry.value_type] = value;
    else if (typeof value === 'string') {
      // The firmware sends numbers as strings ("21.30"); a text value stays text for the decoder.
      const n = value.trim() === '' ? Number.NaN : Number(value);
      values[entry.value_type] = Number.isFinite(n) ? n : value;
    } else return fail(`sensordatavalues[${i}].value must be a string or a number`);
  }
  const topic = `${req.topic}/${node}${pin === undefined ? '' : `/${pin}`}`;
  return { ok: true, format, topic, payload: Buffer.from(JSON.stringify(values)) };
}

function ttn(base: string, doc: Record<string, unknown>): IntakeMessage {
  const format = 'ttn';
  const fail = (reason: string): IntakeMessage => ({ ok: false, format, reason });
  const ids = doc.end_device_ids as Record<string, unknown>;
  const device = ids.device_id;
  if (typeof device !== 'string' || !TOPIC_LEVEL.test(device))
    return fail('end_device_ids.device_id is missing or not a device id (letters, digits, . _ - : @)');
  const topic = `${base}/${device}`;
  const up = doc.uplink_message;
  if (up === undefined) return { ok: true, format, topic, payload: new Uint8Array(0), empty: true };
  if (!isObject(up)) return fail('uplink_message is not an object');
  if (!isObject(up.decoded_payload))
    return fail(
      'uplink_message.decoded_payload is missing: set a payload formatter for the device or its application in The Things Stack',
    );
  const at = typeof up.received_at === 'string' ? up.received_at : doc.received_at;
  const ms = typeof at === 'string' ? Date.parse(at) : Number.NaN;
  const payload = Buffer.from(JSON.stringify(up.decoded_payload));
  return Number.isFinite(ms)
    ? { ok: true, format, topic, payload, carrierTimeMs: ms }
    : { ok: true, format, topic, payload };
}

function firstNonSpace(body: Uint8Array): number | undefined {
  for (const b of body) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b;
  return undefined;
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
