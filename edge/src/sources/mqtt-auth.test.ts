import { describe, expect, it } from 'vitest';
import { MqttAccess, topicMatches } from './mqtt-auth.js';

describe('topicMatches', () => {
  it('follows MQTT wildcard rules', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+/c', 'a/b/d')).toBe(false);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('#', 'x/y')).toBe(true);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
  });
});

describe('MqttAccess', () => {
  const access = new MqttAccess([
    { username: 'greenhouse', password: 'secret-gh-1', publish: ['sensors/greenhouse/#'], subscribe: [] },
  ]);
  it('authenticates only known users with the right password', () => {
    expect(access.authenticate('greenhouse', Buffer.from('secret-gh-1'))).toBe(true);
    expect(access.authenticate('greenhouse', Buffer.from('wrong'))).toBe(false);
    expect(access.authenticate('nobody', Buffer.from('secret-gh-1'))).toBe(false);
    expect(access.authenticate(undefined, undefined)).toBe(false);
  });
  it('limits publishing to the user topics', () => {
    expect(access.canPublish('greenhouse', 'sensors/greenhouse/t1')).toBe(true);
    expect(access.canPublish('greenhouse', 'sensors/barn/t1')).toBe(false);
    expect(access.canSubscribe('greenhouse', '#')).toBe(false);
  });
  it('lets everyone in when no users are configured', () => {
    const open = new MqttAccess([]);
    expect(open.authenticate(undefined, undefined)).toBe(true);
    expect(open.canPublish(undefined, 'x')).toBe(true);
  });
});
