import type { Route, RouteContext } from '../http-api.js';

/** A JSON Schema fragment as OpenAPI 3.0 writes it. */
export type SchemaObject = Readonly<Record<string, unknown>>;

/**
 * One query parameter: what the OpenAPI document says about it and the parser the handler gets its
 * value from. Handlers read the query only through these, so the document cannot drift from what the
 * server accepts.
 */
export interface QueryParam<T> {
  readonly name: string;
  readonly description: string;
  readonly schema: SchemaObject;
  readonly required?: boolean;
  /** A value that works against any collection (the document's example, and the tests' request). */
  readonly example?: string;
  /** The value, or an HttpError 400 that names the parameter, what is wrong and what to send. */
  parse(text: string | null): T;
}

/** A path parameter (`:name` in the route, `{name}` in the document); routing decodes it. */
export interface PathParam {
  readonly description: string;
  readonly schema: SchemaObject;
}

type Params = Readonly<Record<string, QueryParam<unknown>>>;
export type Parsed<P extends Params> = { -readonly [K in keyof P]: ReturnType<P[K]['parse']> };

/** One GET operation of the read API. */
export interface Operation<P extends Params = Params> {
  /** The route pattern, `:name` for a path parameter. */
  readonly path: string;
  readonly id: string;
  readonly summary: string;
  readonly tags: readonly string[];
  readonly pathParams?: Readonly<Record<string, PathParam>>;
  readonly query: P;
  /** Media types of a successful answer. */
  readonly produces: readonly string[];
  /** Statuses besides 200 and 400 the operation answers with (404 when a path names something). */
  readonly statuses?: readonly number[];
  handle(ctx: RouteContext, query: Parsed<P>): Promise<void> | void;
}

/** An operation with its query's types inferred. */
export function operation<P extends Params>(op: Operation<P>): Operation<P> {
  return op;
}

/** Every declared parameter parsed (each refusal a 400); parameters not declared are ignored. */
export function parseQuery<P extends Params>(query: URLSearchParams, params: P): Parsed<P> {
  const out: Record<string, unknown> = {};
  for (const [key, p] of Object.entries(params)) out[key] = p.parse(query.get(p.name));
  return out as Parsed<P>;
}

/** The operations as routes of the HTTP server. */
export function routesOf(ops: readonly Operation[]): Record<string, Route> {
  return Object.fromEntries(
    ops.map((op) => [op.path, (ctx: RouteContext) => op.handle(ctx, parseQuery(ctx.query, op.query))]),
  );
}

/** `/collections/:dataset/items` as OpenAPI writes it: `/collections/{dataset}/items`. */
export const openApiPath = (path: string) => path.replace(/:([A-Za-z]+)/g, '{$1}');

export const OPENAPI_MEDIA_TYPE = 'application/vnd.oai.openapi+json;version=3.0';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'A query parameter is not valid; the message names it and what to send.',
  404: 'The collection (or what the path names inside it) does not exist.',
};

/** The OpenAPI 3.0 document of `ops`, built from their declarations only. */
export function openApiDocument(
  ops: readonly Operation[],
  info: { title: string; version: string; description: string },
  serverUrl: string,
): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const op of ops) {
    const parameters = [
      ...Object.entries(op.pathParams ?? {}).map(([name, p]) => ({
        name,
        in: 'path',
        required: true,
        description: p.description,
        schema: p.schema,
      })),
      ...Object.values(op.query).map((p) => ({
        name: p.name,
        in: 'query',
        required: p.required ?? false,
        description: p.description,
        schema: p.schema,
        ...(p.example !== undefined ? { example: p.example } : {}),
        // OGC lists (bbox, parameter-name) are one comma-separated value, not repeated parameters.
        ...(p.schema.type === 'array' ? { style: 'form', explode: false } : {}),
      })),
    ];
    const responses: Record<string, unknown> = {
      200: {
        description: STATUS_TEXT[200],
        content: Object.fromEntries(op.produces.map((t) => [t, {}])),
      },
      400: { $ref: '#/components/responses/Error400' },
    };
    for (const s of op.statuses ?? []) {
      responses[s] =
        s === 404 ? { $ref: '#/components/responses/Error404' } : { description: STATUS_TEXT[s] };
    }
    paths[openApiPath(op.path)] = {
      get: { operationId: op.id, summary: op.summary, tags: op.tags, parameters, responses },
    };
  }
  const error = (description: string) => ({
    description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  });
  return {
    openapi: '3.0.3',
    info,
    servers: [{ url: serverUrl }],
    paths,
    components: {
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'string', description: 'What is wrong and what to send instead.' } },
        },
      },
      responses: {
        Error400: error(STATUS_TEXT[400] as string),
        Error404: error(STATUS_TEXT[404] as string),
      },
    },
  };
}
