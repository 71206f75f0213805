import { parseTopicPattern } from '@fieldbeam/protocol';

// The pattern syntax is the sensor config's, which the collector checks too (`sensors add`).
export { isTopicFilter, parseTopicPattern, type TopicPattern } from '@fieldbeam/protocol';

/**
 * A test for topics under an MQTT filter. As MQTT says, a filter that starts with a wildcard does
 * not match topics that start with `$` (`$SYS/...`).
 */
export function compileTopicFilter(filter: string): (topic: string) => boolean {
  const pattern = parseTopicPattern(filter);
  const wild = filter.startsWith('+') || filter.startsWith('#');
  return (topic) => !(wild && topic.startsWith('$')) && pattern.match(topic) !== undefined;
}
