// Shared context and helpers for the pure schema tests.
import assert from 'node:assert/strict';
import { parse } from 'smol-toml';
import { ConfigError } from '../../../src/errors.js';
import { validateDocument, type SchemaContext, type ValidatedDocument } from '../../../src/config/schema.js';

export const CTX: SchemaContext = {
  configPath: '/etc/loft/loft.toml',
  baseDir: '/etc/loft',
  cwd: '/srv/work',
  env: { HOME: '/home/alice' },
  homeDir: '/home/fallback',
  debug: false,
};

export function validate(toml: string, ctx: Partial<SchemaContext> = {}): ValidatedDocument {
  return validateDocument(parse(toml), { ...CTX, ...ctx });
}

export function errorOf(toml: string, ctx: Partial<SchemaContext> = {}): string {
  try {
    validate(toml, ctx);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'error messages are one line');
    return err.message;
  }
  assert.fail(`no error for:\n${toml}`);
}
