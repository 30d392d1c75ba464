// A throwaway certificate authority for the TLS tests, made at test time with the `openssl` command
// in a directory of the test's own (nothing of it is ever committed): a CA, a server certificate
// for 127.0.0.1 (subjectAltName IP:127.0.0.1, as curl and Node check an address against the IP
// SAN, not the CN) and a client certificate for mutual TLS, each signed by the CA. P-256 keys:
// made in milliseconds, and written as PKCS#8 ("BEGIN PRIVATE KEY"), which Node and nginx read.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const OPENSSL = '/usr/bin/openssl';

export interface TestPki {
  dir: string;
  /** The CA's certificate (PEM): what `ca_file` and NIX_SSL_CERT_FILE name. */
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  /** The client's private key, mode 0600. */
  clientKey: string;
}

/** Why the PKI cannot be made here, or undefined when it can. */
export function opensslMissing(): string | undefined {
  return existsSync(OPENSSL) ? undefined : `${OPENSSL} is not installed (apt-get install openssl)`;
}

export async function makeTestPki(parent: string): Promise<TestPki> {
  const dir = join(parent, 'pki');
  await mkdir(dir, { recursive: true });
  const file = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=loft test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const leaf = async (name: string, subject: string, extensions: string, serial: string) => {
    await writeFile(file(`${name}.ext`), extensions);
    await openssl([
      'req',
      ...ec,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
      '-subj',
      subject,
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-set_serial',
      serial,
      '-days',
      '2',
      '-out',
      file(`${name}.pem`),
      '-extfile',
      file(`${name}.ext`),
    ]);
    await chmod(file(`${name}.key`), 0o600);
  };
  await leaf('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n', '2');
  await leaf('client', '/CN=loft test client', 'extendedKeyUsage=clientAuth\n', '3');
  return {
    dir,
    caCert: file('ca.pem'),
    serverCert: file('server.pem'),
    serverKey: file('server.key'),
    clientCert: file('client.pem'),
    clientKey: file('client.key'),
  };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync(OPENSSL, args, { encoding: 'utf8' });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`);
  }
}
