import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatListenAddress, parseListenAddress } from '../../../src/config/metrics-listen.js';

test('IPv4, bracketed IPv6 and localhost with a port; 0 lets the system choose', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListenAddress('[::1]:9464'), { host: '::1', port: 9464 });
  assert.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
  assert.deepEqual(parseListenAddress('0.0.0.0:65535'), { host: '0.0.0.0', port: 65535 });
  assert.equal(formatListenAddress({ host: '::1', port: 9 }), '[::1]:9');
});

test('everything else is rejected', () => {
  for (const bad of [
    '',
    '9464',
    ':9464',
    '127.0.0.1',
    '127.0.0.1:',
    '127.0.0.1:65536',
    '127.0.0.1:-1',
    '127.0.0.1:94a',
    '::1:9464',
    '[127.0.0.1]:9464',
    '[::1]',
    'metrics.example.org:9464',
    '256.0.0.1:9464',
    'http://127.0.0.1:9464',
    '127.0.0.1:9464\n',
  ]) {
    assert.equal(parseListenAddress(bad), undefined, JSON.stringify(bad));
  }
});
