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

/** The embedded default: no config file at all (the only case that may lack a cache table). */
export const NO_FILE: SchemaContext = (({ configPath: _omit, ...rest }) => rest)(CTX);

/**
 * A config file must say where the cache is. Tests about other keys get a [local] table added, so
 * each stays about its own keys.
 */
function withCache(toml: string, ctx: Partial<SchemaContext>): string {
  if ('configPath' in ctx && ctx.configPath === undefined) return toml;
  return /^\s*\[\s*(s3|local)\s*[\].]/m.test(toml) || /^\s*(s3|local)\s*=/m.test(toml)
    ? toml
    : `${toml}\n[local]\npath = "cache"\n`;
}

export function validate(toml: string, ctx: Partial<SchemaContext> = {}): ValidatedDocument {
  return validateDocument(parse(withCache(toml, ctx)), { ...CTX, ...ctx });
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
