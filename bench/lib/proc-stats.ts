// What /proc says about another process: resident memory now and at its peak (VmRSS, VmHWM) and
// the CPU seconds it has used (user + system).
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times: 100 on Linux (USER_HZ). */
const USER_HZ = 100;

export interface ProcMemory {
  rssBytes: number;
  hwmBytes: number;
  /** The part of RSS that is anonymous memory (heaps, stacks): what the process costs alone. */
  rssAnonBytes: number;
  /** The part that is mapped files (the node binary's and libraries' pages), shared and reclaimable. */
  rssFileBytes: number;
}

export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return {
    rssBytes: kb('VmRSS'),
    hwmBytes: kb('VmHWM'),
    rssAnonBytes: kb('RssAnon'),
    rssFileBytes: kb('RssFile'),
  };
}

export function procCpuSeconds(pid: number): number {
  // The fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}
