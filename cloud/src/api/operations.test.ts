import { describe, expect, it } from 'vitest';
import { HttpError } from '../http-api.js';
import { openApiDocument, openApiPath, operation, parseQuery, type QueryParam } from './operations.js';

const count: QueryParam<number> = {
  name: 'count',
  description: 'How many',
  schema: { type: 'integer', minimum: 1 },
  example: '3',
  parse: (t) => {
    if (t === null) return 1;
    if (!/^\d+$/.test(t)) throw new HttpError(400, 'count: expected digits');
    return Number(t);
  },
};
const names: QueryParam<string[] | undefined> = {
  name: 'names',
  description: 'Names',
  schema: { type: 'array', items: { type: 'string' } },
  required: true,
  parse: (t) => t?.split(','),
};

describe('operations', () => {
  it('parse every declared parameter with its parser and ignore the others', () => {
    const q = parseQuery(new URLSearchParams('count=4&names=a,b&other=x'), { count, names });
    expect(q).toEqual({ count: 4, names: ['a', 'b'] });
    expect(parseQuery(new URLSearchParams(''), { count })).toEqual({ count: 1 });
    expect(() => parseQuery(new URLSearchParams('count=x'), { count })).toThrow(/count/);
  });

  it('document what they declare: paths, parameters, media types, errors', () => {
    expect(openApiPath('/collections/:collectionId/items/:featureId')).toBe(
      '/collections/{collectionId}/items/{featureId}',
    );
    const op = operation({
      path: '/things/:thingId',
      id: 'getThing',
      summary: 'A thing',
      tags: ['Things'],
      pathParams: { thingId: { description: 'Its id', schema: { type: 'string' } } },
      query: { count, names },
      produces: ['application/json', 'text/csv'],
      statuses: [404],
      handle: () => {},
    });
    const doc = openApiDocument([op], { title: 't', version: '1', description: 'd' }, 'http://h') as {
      openapi: string;
      servers: { url: string }[];
      paths: Record<string, { get: Record<string, unknown> }>;
    };
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.servers).toEqual([{ url: 'http://h' }]);
    const get = doc.paths['/things/{thingId}']?.get;
    expect(get?.operationId).toBe('getThing');
    expect(get?.parameters).toEqual([
      { name: 'thingId', in: 'path', required: true, description: 'Its id', schema: { type: 'string' } },
      {
        name: 'count',
        in: 'query',
        required: false,
        description: 'How many',
        schema: { type: 'integer', minimum: 1 },
        example: '3',
      },
      {
        name: 'names',
        in: 'query',
        required: true,
        description: 'Names',
        schema: { type: 'array', items: { type: 'string' } },
        style: 'form',
        explode: false,
      },
    ]);
    const responses = get?.responses as { 200: { content: object } };
    expect(Object.keys(responses)).toEqual(['200', '400', '404']);
    expect(responses[200].content).toEqual({
      'application/json': {},
      'text/csv': {},
    });
  });
});
