// A netrc file, the way curl (and so Nix's `netrc-file`) reads it: whitespace-separated tokens,
// `machine NAME` starts an entry, `default` is the entry for any other host, `login` and `password`
// belong to the entry before them, `macdef` skips its body up to the next empty line, and
// double-quoted values may hold spaces and \" escapes. The first `machine` that names the URL's
// host (without its port) wins, else `default`. Pure: the loader reads the file.

export interface NetrcLogin {
  login: string;
  password: string;
}

interface Entry {
  machine: string | undefined; // undefined: the `default` entry
  login?: string;
  password?: string;
}

/** The login for `host`, or undefined when the file has neither its machine nor a default. */
export function netrcLoginFor(text: string, host: string): NetrcLogin | undefined {
  const entries = parseNetrc(text);
  const wanted = host.toLowerCase();
  const entry =
    entries.find((e) => e.machine !== undefined && e.machine.toLowerCase() === wanted) ??
    entries.find((e) => e.machine === undefined);
  if (entry?.login === undefined && entry?.password === undefined) return undefined;
  return { login: entry.login ?? '', password: entry.password ?? '' };
}

function parseNetrc(text: string): Entry[] {
  const entries: Entry[] = [];
  const tokens = tokenize(text);
  let current: Entry | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const value = tokens[i + 1];
    switch (token) {
      case 'machine':
        current = { machine: value ?? '' };
        entries.push(current);
        i++;
        break;
      case 'default':
        current = { machine: undefined };
        entries.push(current);
        break;
      case 'login':
      case 'password':
        if (current !== undefined && value !== undefined) current[token] = value;
        i++;
        break;
      case 'account':
      case 'macdef':
        i++;
        break;
      default:
        break; // unknown tokens are ignored, as curl does
    }
  }
  return entries;
}

/** Words and quoted strings; comment lines and macdef bodies (up to an empty line) are dropped. */
function tokenize(text: string): string[] {
  const out: string[] = [];
  let inMacdef = false;
  for (const line of text.split(/\r?\n/)) {
    if (inMacdef) {
      inMacdef = line.trim() !== '';
      continue;
    }
    if (line.trimStart().startsWith('#')) continue;
    const words = [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) =>
      m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? ''),
    );
    out.push(...words);
    if (words.includes('macdef')) inMacdef = true;
  }
  return out;
}
