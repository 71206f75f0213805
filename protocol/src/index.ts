export { DataAvailable, DataSetAvailable, EdgeStatus, ObservationBatch } from './messages.js';
export { IsoTime, Observation } from './observation.js';
export type { ObservationKey } from './observation-id.js';
export { observationId } from './observation-id.js';
export type { StreamSpec } from './streams.js';
export { batchLimits, streams } from './streams.js';
export { batchMsgId, edgeOfObsSubject, isSubjectToken, subjects } from './subjects.js';
export type { Checked } from './validate.js';
export { decodeMessage } from './validate.js';
