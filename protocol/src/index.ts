export { decodeObservationBatch } from './batch-decode.js';
export type {
  BatchEncoding,
  BatchHead,
  BatchV2Codec,
  DecodedBatchV2,
  EncodeV2Options,
} from './batch-v2.js';
export {
  BATCH_ENCODINGS,
  BATCH_V2_BODY_KEYS,
  batchV2Body,
  batchV2Codecs,
  batchV2Limits,
  decodeBatchV2,
  encodeBatchV2,
  isBatchV2,
} from './batch-v2.js';
export type { ControlOp } from './edge-control.js';
export {
  ControlErrorBody,
  ControlErrorStatus,
  ControlReject,
  ControlReply,
  ControlRequest,
  controlLimits,
  controlOps,
  controlServiceName,
  SensorChanges,
} from './edge-control.js';
export type {
  ConfigPath,
  EnvInterpolation,
  EnvProblem,
  TypedReference,
  TypeIssue,
} from './env-interpolation.js';
export { interpolateEnv, interpolateString, retypeReferences } from './env-interpolation.js';
export {
  fastValidBatch,
  fastValidEnvelope,
  fastValidObservation,
  mayHoldUnstorableText,
} from './fast-validate.js';
export type { LogFormat, LogOutput } from './log-lines.js';
export {
  chooseLogFormat,
  isJournalStream,
  isLogFormat,
  journalLine,
  LOG_FORMATS,
  logLineWriter,
  prettyLine,
  syslogPriority,
} from './log-lines.js';
export {
  BatchBuffer,
  bufferLimits,
  ConfigState,
  DataAvailable,
  DataSetAvailable,
  EdgeStatus,
  IssState,
  ObservationBatch,
  ObservationBatchEnvelope,
  ObservationBatchV2Envelope,
  SensorState,
  statusLimits,
} from './messages.js';
export { IsoTime, isIsoTime, Observation, textProblem } from './observation.js';
export type { ObservationKey } from './observation-id.js';
export { observationId } from './observation-id.js';
export type { DecoderFamily } from './sensor-config.js';
export {
  AUTO_REGISTER_DEFAULTS,
  AutoRegisterConfig,
  CentralSensorConfig,
  centralSensors,
  DECODER_FAMILIES,
  DecoderSpec,
  isTimeZone,
  MAX_CENTRAL_SENSORS,
  SensorConfig,
} from './sensor-config.js';
export type { StreamSpec } from './streams.js';
export { batchLimits, streams } from './streams.js';
export { batchMsgId, edgeOfObsSubject, edgeOfStatusSubject, isSubjectToken, subjects } from './subjects.js';
export type { AcceptedTimeRange } from './time-range.js';
export { isDuration, parseDuration, timeRangeProblem } from './time-range.js';
export type { TopicPattern } from './topic-pattern.js';
export { isTopicFilter, parseTopicPattern } from './topic-pattern.js';
export { isTraceId, traceIdOfTraceparent, traceparent } from './trace-context.js';
export type { Checked } from './validate.js';
export { checkValue, decodeMessage, describeIssues } from './validate.js';
