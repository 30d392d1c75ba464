// What loft uploads with a path besides its NAR and narinfo, as Nix's binary cache store does:
//   <hash>.ls and debuginfo/<build id>.debug   after the NAR, before the narinfo (they name the NAR)
//   realisations and build-trace-v2 entries    after the narinfo (a client that finds one fetches
//                                              the output's narinfo next: it must be there)
//   log/<drv base name>                        after the narinfo, once per derivation
// A local log that cannot be read is skipped with a warning; a failed write fails the path like a
// failed narinfo write, so the path is tried again and nothing it needs goes missing.
import {
  buildLogKey,
  CONTENT_TYPE_BUILD_LOG,
  listingKey,
  type LogCompression,
} from '../format/bucket-layout.js';
import { CONTENT_TYPE_DEBUG_INFO, debugInfoLinks } from '../format/debug-info.js';
import { CONTENT_TYPE_LISTING, NarListingBuilder, renderNarListing } from '../format/nar-listing.js';
import type { PathInfo } from '../format/path-info.js';
import {
  CONTENT_TYPE_REALISATION,
  parseRealisationId,
  realisationKeyV1,
  realisationKeyV2,
  renderRealisationV1,
  renderRealisationV2,
  signRealisationV1,
  signRealisationV2,
  type RealisationV1,
  type RealisationV2,
} from '../format/realisation.js';
import type { SecretKey } from '../format/signing-key.js';
import { baseNameOfParsed } from '../format/store-path.js';
import type { Logger } from '../log.js';
import type { LocalRealisations } from '../store/realisations.js';
import { briefError } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';
import { encodeBuildLog } from './log-encoding.js';

export interface ExtrasSettings {
  /** `upload_logs` (default on). */
  uploadLogs: boolean;
  /** `write_nar_listing` (default off, as in Nix). */
  writeNarListing: boolean;
  /** `index_debug_info` (default off, as in Nix). */
  indexDebugInfo: boolean;
  /** `log_compression` (default none); absent is none. */
  logCompression?: LogCompression;
}

export interface PathExtrasDeps {
  store: ObjectStore;
  signingKey: SecretKey | undefined;
  settings: ExtrasSettings;
  /** The decompressed local log of a derivation (store/build-log.ts), undefined when there is none. */
  readBuildLog: (drvBaseName: string) => Promise<Buffer | undefined>;
  /**
   * The realisations Nix recorded for some output paths (store/realisations.ts): paths with none
   * are absent; undefined when they cannot be read.
   */
  readRealisations: (outPaths: readonly string[]) => ReadonlyMap<string, LocalRealisations> | undefined;
  logger: Logger;
  /** Derivations whose log this runtime stored or found stored: each is written once. */
  logsDone: Set<string>;
  signal?: AbortSignal;
}

export class PathExtras {
  /** Realisations read ahead for one upload's paths (prepare), by output path. */
  private readAhead = new Map<string, LocalRealisations | undefined>();
  /**
   * Whether the cache has a derivation's log, asked while a NAR of its outputs was uploaded
   * (askAhead): true or false, undefined when the question failed (asked again when needed).
   */
  private logAsked = new Map<string, Promise<boolean | undefined>>();
  /**
   * This upload's presence listing read the whole top level and found no `log/` folder: no log
   * was stored then, so none is asked about (401 HEADs on a first push of a CI closure).
   */
  private noLogsStored = false;

  constructor(private readonly deps: PathExtrasDeps) {}

  /**
   * Reads the realisations of an upload's content-addressed paths in one pass over Nix's
   * database, before their uploads start: asked path by path, opening the database and preparing
   * its queries took a sixth of loft's CPU on a closure of 1,000 tiny `builtins.toFile` paths
   * (all content-addressed, none with a realisation). A path not prepared is read on its own.
   */
  prepare(infos: readonly PathInfo[], known: { noLogsStored?: boolean } = {}): void {
    this.readAhead = new Map();
    this.logAsked = new Map();
    this.noLogsStored = known.noLogsStored === true;
    const ca = infos.filter((i) => i.ca !== undefined).map((i) => i.path);
    if (ca.length === 0) return;
    const found = this.deps.readRealisations(ca);
    for (const path of ca) this.readAhead.set(path, found?.get(path));
  }

  /**
   * Asks whether the cache has the path's build log once its NAR is stored, so the answer comes
   * while the path waits for its references and writes its narinfo: asked after the narinfo, its
   * round trip came after the narinfo's in every path's critical path (bench/wan.bench.ts).
   */
  askAhead(info: PathInfo): void {
    if (!this.deps.settings.uploadLogs || info.deriver === undefined) return;
    const drv = baseNameOfParsed(info.deriver);
    if (this.deps.logsDone.has(drv) || this.logAsked.has(drv) || this.noLogsStored) return;
    const asked = this.deps.store.head(buildLogKey(drv), this.deps.signal).then(
      (found) => found !== undefined,
      () => undefined,
    );
    this.logAsked.set(drv, asked);
  }

  /** Whether an extra needs the NAR's file listing (so its pass must build one). */
  wantsListing(): boolean {
    const s = this.deps.settings;
    return s.writeNarListing || s.indexDebugInfo;
  }

  /** A listing to fill during the NAR pass, when an extra needs one. */
  startListing(): NarListingBuilder | undefined {
    return this.wantsListing() ? new NarListingBuilder() : undefined;
  }

  /** The listing and debug-info index of a stored NAR, before its narinfo. */
  async afterNar(info: PathInfo, narKey: string, listing: NarListingBuilder | undefined): Promise<void> {
    if (listing === undefined) return;
    const { root } = listing.listing();
    if (this.deps.settings.writeNarListing) {
      await this.put(listingKey(info.hashPart), renderNarListing({ version: 1, root }), CONTENT_TYPE_LISTING);
    }
    if (!this.deps.settings.indexDebugInfo) return;
    for (const link of debugInfoLinks(root, narKey)) {
      // Nix keeps the first archive it indexed for a build id (binary-cache-store.cc).
      if ((await this.deps.store.head(link.key, this.deps.signal)) !== undefined) continue;
      await this.put(link.key, link.body, CONTENT_TYPE_DEBUG_INFO);
    }
  }

  /** Realisations, then the build log: after the narinfo is written. */
  async afterNarInfo(info: PathInfo): Promise<void> {
    await this.realisations(info);
    if (this.deps.settings.uploadLogs && info.deriver !== undefined)
      await this.buildLog(baseNameOfParsed(info.deriver));
  }

  private async realisations(info: PathInfo): Promise<void> {
    // Only a content-addressed output can have one.
    if (info.ca === undefined) return;
    const found = this.readAhead.has(info.path)
      ? this.readAhead.get(info.path)
      : this.deps.readRealisations([info.path])?.get(info.path);
    if (found === undefined) return;
    if (found.v1.length > 0 && info.deriver === undefined)
      this.deps.logger.debug({ path: info.path }, 'no build-trace-v2 entry: the deriver is unknown');
    const key = this.deps.signingKey;
    for (const r of found.v1) {
      const signed = key ? signRealisationV1(r, key) : r;
      await this.put(realisationKeyV1(r.id), renderRealisationV1(signed), CONTENT_TYPE_REALISATION);
    }
    for (const r of [...found.v2, ...v2FromV1(found, info.deriver)]) {
      const signed = key ? signRealisationV2(r, key) : r;
      await this.put(
        realisationKeyV2(r.drvPath, r.outputName),
        renderRealisationV2(signed),
        CONTENT_TYPE_REALISATION,
      );
    }
  }

  private async buildLog(drv: string): Promise<void> {
    if (this.deps.logsDone.has(drv)) return;
    this.deps.logsDone.add(drv); // before the first await: a sibling output must not write it too
    try {
      const key = buildLogKey(drv);
      const early = this.logAsked.get(drv);
      this.logAsked.delete(drv);
      // As with a HEAD's answer, a log another host stores after the listing may be written over.
      const present =
        (await early) ??
        (!this.noLogsStored && (await this.deps.store.head(key, this.deps.signal)) !== undefined);
      if (present) return;
      let log: Buffer | undefined;
      try {
        log = await this.deps.readBuildLog(drv);
      } catch (err) {
        this.deps.logger.warn({ drv, err: briefError(err) }, 'build log not uploaded: it cannot be read');
        return;
      }
      if (log === undefined) return;
      const { body, contentEncoding } = await encodeBuildLog(
        log,
        this.deps.settings.logCompression ?? 'none',
      );
      await this.put(key, body, CONTENT_TYPE_BUILD_LOG, contentEncoding);
    } catch (err) {
      this.deps.logsDone.delete(drv);
      throw err;
    }
  }

  private async put(
    key: string,
    body: Buffer | string,
    contentType: string,
    contentEncoding?: string,
  ): Promise<void> {
    await this.deps.store.putBytes(key, body, {
      contentType,
      ...(contentEncoding ? { contentEncoding } : {}),
      ...(this.deps.signal ? { signal: this.deps.signal } : {}),
    });
  }
}

/**
 * The Nix >= 2.35 entries for the outputs a Nix <= 2.34 database recorded. Nix >= 2.35 keys its
 * build trace by the *resolved* derivation (inputs replaced by their realised outputs; its release
 * notes), and the deriver Nix registers for a CA output it built is that resolved derivation
 * (seen with Nix 2.8: ValidPaths.deriver names a .drv without inputDrvs, the input's output in
 * inputSrcs); with no input derivations it is the derivation itself. Only loft's signature can go
 * on the entry: the local signatures are over the v1 fingerprint. None without a deriver.
 */
function v2FromV1(
  found: { v1: RealisationV1[]; v2: RealisationV2[] },
  deriver: string | undefined,
): RealisationV2[] {
  if (deriver === undefined) return [];
  const drvPath = baseNameOfParsed(deriver);
  const have = new Set(found.v2.map((r) => `${r.drvPath}/${r.outputName}`));
  const out = new Map<string, RealisationV2>();
  for (const r of found.v1) {
    const { outputName } = parseRealisationId(r.id);
    if (have.has(`${drvPath}/${outputName}`)) continue;
    out.set(outputName, { drvPath, outputName, outPath: r.outPath, signatures: [] });
  }
  return [...out.values()];
}
