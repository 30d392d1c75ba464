import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { netrcLoginFor } from '../../../src/config/http-netrc.js';

describe('netrcLoginFor', () => {
  const text = [
    '# comment line',
    'machine other.example login o password op',
    'machine cache.example.org',
    '  login builder',
    '  password "two words \\" here"',
    'macdef init',
    'machine evil.example login x password y',
    '',
    'default login anon password anonpw',
  ].join('\n');

  test('the machine entry for the host, over several lines, with a quoted password', () => {
    assert.deepEqual(netrcLoginFor(text, 'cache.example.org'), {
      login: 'builder',
      password: 'two words " here',
    });
    assert.deepEqual(netrcLoginFor(text, 'CACHE.example.org'), {
      login: 'builder',
      password: 'two words " here',
    });
  });

  test('a macdef body is not read as entries; another host gets the default', () => {
    assert.deepEqual(netrcLoginFor(text, 'evil.example'), { login: 'anon', password: 'anonpw' });
    assert.deepEqual(netrcLoginFor(text, 'nowhere.example'), { login: 'anon', password: 'anonpw' });
  });

  test('no entry and no default: no login', () => {
    assert.equal(netrcLoginFor('machine a login b password c\n', 'z'), undefined);
    assert.equal(netrcLoginFor('', 'z'), undefined);
  });
});
