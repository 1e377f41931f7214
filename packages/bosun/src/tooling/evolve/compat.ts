// The schema evolution gate: what a new release's CRDs would break for clusters running the last one.
// The API server accepts almost every CRD update; the damage shows later, as objects that can no longer
// be updated, clients whose fields vanished, or stored objects read at a version they were never written at.
import { isDeepStrictEqual } from 'node:util';
import type { JSONSchemaProps } from '../../resource/structural.js';

/** One version of a CRD as the gate reads it (from a generated object or a release's YAML). */
export interface CrdVersionDoc {
  name: string;
  served: boolean;
  storage: boolean;
  deprecated?: boolean;
  deprecationWarning?: string;
  schema?: { openAPIV3Schema?: JSONSchemaProps };
  [key: string]: unknown;
}

/** An `apiextensions.k8s.io/v1` CRD as the gate reads it: only the fields compatibility depends on are typed. */
export interface CrdDoc {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; [key: string]: unknown };
  spec: {
    group: string;
    versions: CrdVersionDoc[];
    conversion?: { strategy?: 'None' | 'Webhook'; [key: string]: unknown };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** The kinds of breaking change the gate refuses. */
export type FindingKind =
  | 'crd-removed'
  | 'version-removed'
  | 'served-version-removed'
  | 'field-removed'
  | 'type-changed'
  | 'required-added'
  | 'bound-tightened'
  | 'enum-narrowed'
  | 'pattern-changed'
  | 'unknown-fields-pruned'
  | 'validation-added'
  | 'storage-without-conversion';

/** One breaking change: which CRD, version and field, what breaks, and how to ship the change safely. */
export interface Finding {
  kind: FindingKind;
  /** The CRD name, `<plural>.<group>`. */
  crd: string;
  /** The version whose schema or entry changed. */
  version: string;
  /** The field path inside the object, e.g. `spec.route.from`, `spec.seats[*]`, `spec.labels.*`; '' for the version itself. */
  path: string;
  /** What changed and what it breaks. */
  problem: string;
  /** How to make the change compatible. */
  fix: string;
}

/** The finding as one line: `<crd> <version> <path>: <problem>. Fix: <fix>`. */
export function formatFinding(f: Finding): string {
  return `${f.crd} ${f.version}${f.path ? ` ${f.path}` : ''}: ${f.problem}. Fix: ${f.fix}`;
}

/**
 * Compares the CRDs of the last release with the new ones, matched by name: a CRD of the release that
 * is gone is a finding, and a new CRD is compatible by definition.
 */
export function compareCrdSets(released: readonly CrdDoc[], next: readonly CrdDoc[]): Finding[] {
  const byName = new Map(next.map((c) => [c.metadata.name, c]));
  const findings: Finding[] = [];
  for (const old of released) {
    const now = byName.get(old.metadata.name);
    if (now === undefined) {
      findings.push({
        kind: 'crd-removed',
        crd: old.metadata.name,
        version: old.spec.versions.map((v) => v.name).join(','),
        path: '',
        problem: 'the CRD is gone from the generated manifests; deleting it on upgrade deletes every object of it',
        fix: 'keep the resource in the project module (the resources export) for as long as clusters may hold its objects',
      });
      continue;
    }
    findings.push(...compareCrds(old, now));
  }
  return findings;
}

/** Every breaking change from `old` (the last release's CRD) to `next` (the newly generated one). */
export function compareCrds(old: CrdDoc, next: CrdDoc): Finding[] {
  const crd = next.metadata.name;
  const findings: Finding[] = [];
  const nextVersions = new Map(next.spec.versions.map((v) => [v.name, v]));
  for (const ov of old.spec.versions) {
    const nv = nextVersions.get(ov.name);
    if (nv === undefined) {
      // A version the last release no longer served has no clients left; the API server itself refuses the
      // removal while status.storedVersions still lists it, so no stored object can be lost by it.
      if (ov.served || ov.storage) {
        findings.push({
          kind: 'version-removed',
          crd,
          version: ov.name,
          path: '',
          problem: `version ${ov.name} is removed while the last release ${ov.storage ? 'stores objects at it' : 'serves it'}; its clients fail and objects stored at it become unreadable`,
          fix: `keep ${ov.name} in the CRD with served: false, storage: false for one release (after deprecated: true in an earlier one), run \`bosun crd migrate ${crd}\` on every cluster, and remove it in the release after`,
        });
      }
      continue;
    }
    if (ov.served && !nv.served && ov.deprecated !== true) {
      findings.push({
        kind: 'served-version-removed',
        crd,
        version: ov.name,
        path: '',
        problem: `version ${ov.name} is no longer served, and the last release never marked it deprecated; its clients fail without warning`,
        fix: `serve ${ov.name} for one more release with deprecated: true and a deprecationWarning naming its replacement, then stop serving it`,
      });
    }
    const os = ov.schema?.openAPIV3Schema;
    const ns = nv.schema?.openAPIV3Schema;
    if (os !== undefined && ns !== undefined) compareSchemas(os, ns, { crd, version: ov.name, path: '', findings });
  }
  findings.push(...storageFindings(old, next));
  return findings;
}

function storageFindings(old: CrdDoc, next: CrdDoc): Finding[] {
  const oldStorage = old.spec.versions.find((v) => v.storage);
  const newStorage = next.spec.versions.find((v) => v.storage);
  if (oldStorage === undefined || newStorage === undefined || oldStorage.name === newStorage.name) return [];
  const strategy = next.spec.conversion?.strategy ?? 'None';
  if (strategy !== 'None') return [];
  // The previous storage version as this release declares it: objects stored by the last release are read through it.
  const previous = next.spec.versions.find((v) => v.name === oldStorage.name);
  if (previous === undefined) return []; // already a version-removed finding
  const a = withoutDescriptions(previous.schema?.openAPIV3Schema);
  const b = withoutDescriptions(newStorage.schema?.openAPIV3Schema);
  if (isDeepStrictEqual(a, b)) return [];
  return [
    {
      kind: 'storage-without-conversion',
      crd: next.metadata.name,
      version: newStorage.name,
      path: '',
      problem: `the storage version moves from ${oldStorage.name} to ${newStorage.name}, whose schemas differ, with conversion strategy None: objects stored at ${oldStorage.name} are served as ${newStorage.name} with only apiVersion changed`,
      fix: `declare the versions with defineVersions (hub and spokes) so the CRD gets a Webhook conversion, or keep the storage version at ${oldStorage.name}; after the upgrade run \`bosun crd migrate ${next.metadata.name}\``,
    },
  ];
}

interface Walk {
  crd: string;
  version: string;
  path: string;
  findings: Finding[];
}

function add(w: Walk, kind: FindingKind, problem: string, fix: string): void {
  w.findings.push({ kind, crd: w.crd, version: w.version, path: w.path, problem, fix });
}

function child(w: Walk, segment: string): Walk {
  return { ...w, path: w.path === '' ? segment : segment.startsWith('[') ? `${w.path}${segment}` : `${w.path}.${segment}` };
}

const LOWER_BOUNDS = ['minimum', 'minLength', 'minItems', 'minProperties'] as const;
const UPPER_BOUNDS = ['maximum', 'maxLength', 'maxItems', 'maxProperties'] as const;

function typeOf(s: JSONSchemaProps): string | undefined {
  return s['x-kubernetes-int-or-string'] ? 'int-or-string' : s.type;
}

function compareSchemas(os: JSONSchemaProps, ns: JSONSchemaProps, w: Walk): void {
  const where = w.path === '' ? 'the object' : w.path;
  const ot = typeOf(os);
  const nt = typeOf(ns);
  if (ot !== undefined && ot !== nt) {
    add(
      w,
      'type-changed',
      `the type changes from ${ot} to ${nt ?? 'untyped'}; stored objects and clients hold ${ot} values`,
      `keep ${where} as ${ot} and add a new field of type ${nt ?? 'untyped'} beside it (or serve the new type in a new version with conversion)`,
    );
    // The rest of the subtree is not comparable once the type changed.
    return;
  }
  compareBounds(os, ns, w, where);

  if (os['x-kubernetes-preserve-unknown-fields'] === true && ns['x-kubernetes-preserve-unknown-fields'] !== true) {
    add(
      w,
      'unknown-fields-pruned',
      'x-kubernetes-preserve-unknown-fields is dropped: the API server now prunes fields the schema does not list, deleting data stored objects carry',
      `keep x-kubernetes-preserve-unknown-fields: true on ${where}, or list every field stored objects may have`,
    );
  }
  if (os.nullable === true && ns.nullable !== true) {
    add(w, 'bound-tightened', 'nullable is dropped: a stored null value is refused on the next update', `keep nullable: true on ${where}`);
  }

  const oldRequired = new Set(os.required ?? []);
  for (const name of ns.required ?? []) {
    if (oldRequired.has(name)) continue;
    const field = ns.properties?.[name];
    if (field?.default !== undefined) continue; // defaulted on read from storage, so stored objects have it
    const at = w.path === '' ? name : `${w.path}.${name}`;
    add(
      child(w, name),
      'required-added',
      `${at} becomes required without a default; stored objects and existing clients' objects without it are refused on update`,
      `make ${at} optional, or give it a default (Type.Optional with { default: ... } in the resource definition)`,
    );
  }

  const oldRules = new Set((os['x-kubernetes-validations'] ?? []).map((r) => r.rule));
  for (const rule of ns['x-kubernetes-validations'] ?? []) {
    if (oldRules.has(rule.rule) || /\boldSelf\b/.test(rule.rule)) continue;
    add(
      w,
      'validation-added',
      `a new x-kubernetes-validations rule '${rule.rule}' does not ratchet on oldSelf; a stored object that breaks it can no longer be updated, not even to fix it`,
      `ratchet it: set optionalOldSelf: true and write the rule as '(oldSelf.hasValue() && oldSelf.value() == self) || (${rule.rule})', so unchanged values pass and new values must satisfy it`,
    );
  }

  const oldProps = os.properties ?? {};
  const newProps = ns.properties ?? {};
  for (const [name, oldField] of Object.entries(oldProps)) {
    const newField = newProps[name];
    const cw = child(w, name);
    if (newField === undefined) {
      if (ns['x-kubernetes-preserve-unknown-fields'] === true) continue; // still stored and returned, just untyped
      add(
        cw,
        'field-removed',
        `${cw.path} is removed: the API server prunes it from every object on its next write, and clients that set it are refused or lose it`,
        `keep ${cw.path} in the schema (mark it deprecated in its description), and drop it only in a new API version served with conversion`,
      );
      continue;
    }
    compareSchemas(oldField, newField, cw);
  }
  if (os.items !== undefined && ns.items !== undefined) compareSchemas(os.items, ns.items, child(w, '[*]'));
  if (typeof os.additionalProperties === 'object' && typeof ns.additionalProperties === 'object') {
    compareSchemas(os.additionalProperties, ns.additionalProperties, child(w, '*'));
  }
}

function compareBounds(os: JSONSchemaProps, ns: JSONSchemaProps, w: Walk, where: string): void {
  for (const key of LOWER_BOUNDS) {
    const o = os[key];
    const n = ns[key];
    if (n === undefined || (o !== undefined && n <= o)) continue;
    add(
      w,
      'bound-tightened',
      `${key} ${o === undefined ? `is added (${n})` : `rises from ${o} to ${n}`}; stored objects below it are refused on update`,
      o === undefined ? `drop ${key} from ${where}, or enforce it in a new API version` : `keep ${key} at ${o} or lower`,
    );
  }
  for (const key of UPPER_BOUNDS) {
    const o = os[key];
    const n = ns[key];
    if (n === undefined || (o !== undefined && n >= o)) continue;
    add(
      w,
      'bound-tightened',
      `${key} ${o === undefined ? `is added (${n})` : `falls from ${o} to ${n}`}; stored objects above it are refused on update`,
      o === undefined ? `drop ${key} from ${where}, or enforce it in a new API version` : `keep ${key} at ${o} or higher`,
    );
  }
  for (const [flag, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (ns[flag] === true && os[flag] !== true && ns[bound] !== undefined && ns[bound] === os[bound]) {
      add(w, 'bound-tightened', `${flag} is set: the value ${ns[bound]} itself is now refused`, `leave ${flag} unset on ${where}`);
    }
  }
  if (ns.multipleOf !== undefined && (os.multipleOf === undefined || os.multipleOf % ns.multipleOf !== 0)) {
    add(
      w,
      'bound-tightened',
      `multipleOf ${os.multipleOf === undefined ? `is added (${ns.multipleOf})` : `changes from ${os.multipleOf} to ${ns.multipleOf}`}; stored values that are not multiples are refused on update`,
      os.multipleOf === undefined ? `drop multipleOf from ${where}` : `keep multipleOf at ${os.multipleOf} or a divisor of it`,
    );
  }
  if (ns.pattern !== undefined && ns.pattern !== os.pattern) {
    // Whether one regular expression accepts a superset of another cannot be decided in general.
    add(
      w,
      'pattern-changed',
      `pattern ${os.pattern === undefined ? `'${ns.pattern}' is added` : `changes from '${os.pattern}' to '${ns.pattern}'`}; stored values may not match it and are refused on update`,
      os.pattern === undefined ? `drop the pattern from ${where}, or enforce it in a new API version` : `keep the pattern '${os.pattern}'`,
    );
  }
  if (ns.enum !== undefined) {
    const allowed = ns.enum;
    const lost = os.enum === undefined ? undefined : os.enum.filter((v) => !allowed.some((a) => isDeepStrictEqual(a, v)));
    if (lost === undefined) {
      add(
        w,
        'enum-narrowed',
        `an enum (${allowed.map((v) => JSON.stringify(v)).join(', ')}) is added; stored values outside it are refused on update`,
        `drop the enum from ${where}, or enforce it in a new API version`,
      );
    } else if (lost.length > 0) {
      const values = lost.map((v) => JSON.stringify(v)).join(', ');
      add(
        w,
        'enum-narrowed',
        `the enum loses ${values}; stored objects with ${lost.length === 1 ? 'it' : 'them'} are refused on update`,
        `keep ${values} in the enum of ${where}`,
      );
    }
  }
}

function withoutDescriptions(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(withoutDescriptions);
  if (s === null || typeof s !== 'object') return s;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'description') continue;
    // A property named "description" is a field, not a keyword.
    out[k] = k === 'properties' && v !== null && typeof v === 'object' ? mapValues(v as Record<string, unknown>) : withoutDescriptions(v);
  }
  return out;
}

function mapValues(props: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, withoutDescriptions(v)]));
}
