// Least-privilege RBAC derived from what controllers declare, so permissions can never drift from code.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ControllerSpec } from '../../controller/builder.js';
import type { ResourceType } from '../../client/types.js';
import { bosunError } from '../../errors.js';

/** The verbs bosun ever grants; a closed list so a typo cannot slip through as a new verb. */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

/** One RBAC PolicyRule as it appears in a Role or ClusterRole. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: Verb[];
}

/** A read of named objects in the operator's own namespace, e.g. the Secret holding an API key. */
export interface NamedRead {
  /** The type read; must be namespaced, as the grant is a Role in the operator namespace. */
  type: ResourceType;
  /** The object names; required so the grant cannot reach other objects of the type. */
  names: string[];
  /** Default ['get']: reading by name needs nothing more. */
  verbs?: Verb[];
}

/** Inputs besides the controllers: names and the operator namespace. */
export interface RbacOptions {
  /** Prefix of every object name (ServiceAccount `<prefix>-controller-manager`, roles, bindings). */
  prefix: string;
  /** The namespace the operator runs in: the ServiceAccount, the Lease and named reads live there. */
  namespace: string;
  /** Named reads in the operator namespace that no watch covers. */
  reads?: NamedRead[];
}

/** Any RBAC object bosun emits, loosely typed for YAML rendering. */
export interface RbacObject {
  apiVersion: string;
  kind: 'ServiceAccount' | 'ClusterRole' | 'ClusterRoleBinding' | 'Role' | 'RoleBinding';
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: PolicyRule[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace: string }[];
}

/** A generated RBAC file: its base name and the objects in it. */
export interface RbacFile {
  file: string;
  objects: RbacObject[];
}

/** Raised when a declaration cannot become a least-privilege rule (for example a named read of a cluster-scoped type). */
export class RbacDeclarationError extends bosunError('BOSUN_RBAC_DECLARATION') {
  override name = 'RbacDeclarationError';
}

/** Raised when generated or checked-in RBAC grants a wildcard, which least privilege forbids. */
export class RbacWildcardError extends bosunError('BOSUN_RBAC_WILDCARD') {
  override name = 'RbacWildcardError';
}

const PRIMARY: Verb[] = ['get', 'list', 'watch', 'patch', 'update'];
const STATUS: Verb[] = ['get', 'patch', 'update'];
const FINALIZERS: Verb[] = ['update'];
const OWNED: Verb[] = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'];
const WATCHED: Verb[] = ['get', 'list', 'watch'];
// `writes` names types only; the write verbs, without reads, are what "written without being watched" needs.
const WRITTEN: Verb[] = ['create', 'patch', 'update', 'delete'];
// The EventRecorder creates Events and patches their count when a message repeats; it never reads them.
const EVENTS: Verb[] = ['create', 'patch'];
// Leader election reads, creates and renews one Lease; Lease names depend on the operators run, so no resourceNames.
const LEASES: Verb[] = ['get', 'create', 'update'];
const VERB_ORDER: Verb[] = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

const LABELS = { 'app.kubernetes.io/managed-by': 'bosun', 'app.kubernetes.io/component': 'rbac' };

/** Accumulates verbs per (apiGroup, resource, resourceNames) and renders them as merged, sorted rules. */
class RuleSet {
  private readonly grants = new Map<string, { group: string; resource: string; names: string[]; verbs: Set<Verb> }>();

  add(group: string, resource: string, verbs: Verb[], names: string[] = []): void {
    const sortedNames = [...new Set(names)].sort();
    const key = JSON.stringify([group, resource, sortedNames]);
    const g = this.grants.get(key) ?? { group, resource, names: sortedNames, verbs: new Set<Verb>() };
    for (const v of verbs) g.verbs.add(v);
    this.grants.set(key, g);
  }

  // Resources with the same group, verbs and names share one rule, as controller-gen prints them.
  rules(): PolicyRule[] {
    const merged = new Map<string, PolicyRule>();
    for (const g of this.grants.values()) {
      const verbs = VERB_ORDER.filter((v) => g.verbs.has(v));
      const key = JSON.stringify([g.group, verbs, g.names]);
      const rule = merged.get(key) ?? { apiGroups: [g.group], resources: [], ...(g.names.length ? { resourceNames: g.names } : {}), verbs };
      rule.resources.push(g.resource);
      merged.set(key, rule);
    }
    const rules = [...merged.values()];
    for (const r of rules) r.resources.sort();
    return rules.sort(
      (a, b) =>
        cmp(a.apiGroups[0] ?? '', b.apiGroups[0] ?? '') ||
        cmp(a.resources[0] ?? '', b.resources[0] ?? '') ||
        cmp(a.verbs.join(), b.verbs.join()),
    );
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The cluster-wide rules the controllers need: every watch is cluster-wide, so every grant is too.
 * A type a controller `reads` is granted `get` here unless a named read narrows it to a Role.
 */
export function clusterRules(controllers: readonly ControllerSpec[], namedReads: readonly NamedRead[] = []): PolicyRule[] {
  const set = new RuleSet();
  const narrowed = new Set(namedReads.map((r) => `${r.type.group}/${r.type.plural}`));
  for (const c of controllers) {
    const t = c.forType;
    set.add(t.group, t.plural, PRIMARY);
    set.add(t.group, `${t.plural}/status`, STATUS);
    set.add(t.group, `${t.plural}/finalizers`, FINALIZERS);
    for (const o of c.owns) set.add(o.type.group, o.type.plural, OWNED);
    for (const w of c.watches) set.add(w.type.group, w.type.plural, WATCHED);
    for (const w of c.writes) set.add(w.group, w.plural, WRITTEN);
    for (const r of c.reads ?? []) if (!narrowed.has(`${r.group}/${r.plural}`)) set.add(r.group, r.plural, ['get']);
  }
  set.add('', 'events', EVENTS);
  return set.rules();
}

/** The rules of the operator-namespace Role: the leader-election Lease. */
export function leaderElectionRules(): PolicyRule[] {
  const set = new RuleSet();
  set.add('coordination.k8s.io', 'leases', LEASES);
  return set.rules();
}

/** The rules of the operator-namespace Role for named reads (empty when nothing is read by name). */
export function namedReadRules(reads: readonly NamedRead[]): PolicyRule[] {
  const set = new RuleSet();
  for (const r of reads) {
    if (!r.type.namespaced) {
      throw new RbacDeclarationError(
        `named read of ${r.type.kind}: the type is cluster-scoped, but named reads are granted by a Role in the operator namespace. Fix: declare it as a watch, or drop it`,
      );
    }
    if (r.names.length === 0 || r.names.some((n) => !n || n.includes('*'))) {
      throw new RbacDeclarationError(
        `named read of ${r.type.kind}: names ${JSON.stringify(r.names)} must be one or more exact object names. Fix: list the names the operator reads`,
      );
    }
    set.add(r.type.group, r.type.plural, r.verbs ?? ['get'], r.names);
  }
  return set.rules();
}

/** What the webhook certificate rotator (the Manager's `webhookCerts`) reads and writes, by name. */
export interface CertRotationGrants {
  /** The Secret holding the CA and serving certificate, in the operator namespace. */
  secret: string;
  /** The ValidatingWebhookConfiguration whose caBundle it keeps, if the project has one. */
  validating?: string;
  /** The MutatingWebhookConfiguration whose caBundle it keeps, if the project has one. */
  mutating?: string;
  /** The CRDs whose conversion caBundle it keeps. */
  crds: readonly string[];
}

// The rotator watches each object by name (fieldSelector metadata.name), which resourceNames authorize.
const NAMED_WATCH: Verb[] = ['get', 'list', 'watch'];

/**
 * The rules of the rotator: in the operator namespace, its Secret by name (read, watched, updated with the
 * resourceVersion read) and `create` on Secrets, which resourceNames cannot narrow (the authorizer sees no name
 * before the object exists); cluster-wide, read, watch and patch of exactly the named webhook configurations and CRDs.
 */
export function certRotationRules(g: CertRotationGrants): { namespaced: PolicyRule[]; cluster: PolicyRule[] } {
  const ns = new RuleSet();
  ns.add('', 'secrets', [...NAMED_WATCH, 'update'], [g.secret]);
  ns.add('', 'secrets', ['create']);
  const cluster = new RuleSet();
  const injected: Verb[] = [...NAMED_WATCH, 'patch'];
  if (g.validating) cluster.add('admissionregistration.k8s.io', 'validatingwebhookconfigurations', injected, [g.validating]);
  if (g.mutating) cluster.add('admissionregistration.k8s.io', 'mutatingwebhookconfigurations', injected, [g.mutating]);
  if (g.crds.length) cluster.add('apiextensions.k8s.io', 'customresourcedefinitions', injected, [...g.crds]);
  return { namespaced: ns.rules(), cluster: cluster.rules() };
}

/** Throws RbacWildcardError naming the object and field when any rule grants '*'. */
export function assertNoWildcards(objects: readonly RbacObject[]): void {
  for (const o of objects) {
    for (const [i, r] of (o.rules ?? []).entries()) {
      for (const field of ['apiGroups', 'resources', 'resourceNames', 'verbs'] as const) {
        const values = (r[field] ?? []) as string[];
        if (values.some((v) => v.includes('*'))) {
          throw new RbacWildcardError(
            `${o.kind} ${o.metadata.name}: rules[${i}].${field} contains '*'. Fix: list the exact ${field} the controllers need`,
          );
        }
      }
    }
  }
}

/** The ServiceAccount name the operator Deployment runs as, for a prefix. */
export function serviceAccountName(prefix: string): string {
  return `${prefix}-controller-manager`;
}

/** Every RBAC object the operator needs, grouped into the files `bosun generate` writes. */
export function generateRbac(controllers: readonly ControllerSpec[], opts: RbacOptions): RbacFile[] {
  const { prefix, namespace } = opts;
  const sa = serviceAccountName(prefix);
  const subject = [{ kind: 'ServiceAccount', name: sa, namespace }];
  const rbac = 'rbac.authorization.k8s.io/v1';
  const meta = (name: string, ns?: string) => ({ name, ...(ns ? { namespace: ns } : {}), labels: { ...LABELS } });
  const binding = (
    kind: 'ClusterRoleBinding' | 'RoleBinding',
    name: string,
    roleKind: 'ClusterRole' | 'Role',
    role: string,
    ns?: string,
  ): RbacObject => ({
    apiVersion: rbac,
    kind,
    metadata: meta(name, ns),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: role },
    subjects: subject,
  });
  const files: RbacFile[] = [
    { file: 'service_account.yaml', objects: [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(sa, namespace) }] },
    {
      file: 'role.yaml',
      objects: [
        {
          apiVersion: rbac,
          kind: 'ClusterRole',
          metadata: meta(`${prefix}-manager-role`),
          rules: clusterRules(controllers, opts.reads ?? []),
        },
      ],
    },
    {
      file: 'role_binding.yaml',
      objects: [binding('ClusterRoleBinding', `${prefix}-manager-rolebinding`, 'ClusterRole', `${prefix}-manager-role`)],
    },
    {
      file: 'leader_election_role.yaml',
      objects: [
        { apiVersion: rbac, kind: 'Role', metadata: meta(`${prefix}-leader-election-role`, namespace), rules: leaderElectionRules() },
      ],
    },
    {
      file: 'leader_election_role_binding.yaml',
      objects: [binding('RoleBinding', `${prefix}-leader-election-rolebinding`, 'Role', `${prefix}-leader-election-role`, namespace)],
    },
  ];
  const reads = namedReadRules(opts.reads ?? []);
  if (reads.length) {
    files.push(
      {
        file: 'named_reads_role.yaml',
        objects: [{ apiVersion: rbac, kind: 'Role', metadata: meta(`${prefix}-named-reads-role`, namespace), rules: reads }],
      },
      {
        file: 'named_reads_role_binding.yaml',
        objects: [binding('RoleBinding', `${prefix}-named-reads-rolebinding`, 'Role', `${prefix}-named-reads-role`, namespace)],
      },
    );
  }
  assertNoWildcards(files.flatMap((f) => f.objects));
  return files;
}

const HEADER = [
  "# Generated by `bosun generate` from the controllers' declarations (for, owns, watches, writes).",
  '# Do not edit by hand: change the controllers and run `make manifests` again.',
].join('\n');

/** The YAML text of each RBAC file, plus the kustomization.yaml listing them, by base name. */
export function renderRbac(files: readonly RbacFile[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of files) out.set(f.file, `${HEADER}\n${f.objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n')}`);
  out.set(
    'kustomization.yaml',
    `${HEADER}\n${stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: files.map((f) => f.file) })}`,
  );
  return out;
}

/** Writes the RBAC files into outDir, removing generated files no longer produced; returns the paths written. */
export async function writeRbac(files: readonly RbacFile[], outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const rendered = renderRbac(files);
  for (const f of await readdir(outDir)) {
    // Only files carrying our header are ours to delete, so hand-written extras survive.
    if (f.endsWith('.yaml') && !rendered.has(f) && (await readFile(join(outDir, f), 'utf8')).startsWith(HEADER)) await rm(join(outDir, f));
  }
  const written: string[] = [];
  for (const [name, text] of rendered) {
    await writeFile(join(outDir, name), text);
    written.push(join(outDir, name));
  }
  return written;
}

/** The RBAC files in outDir that are missing, differ from generation, or are generated leftovers (empty when in sync). */
export async function checkRbac(files: readonly RbacFile[], outDir: string): Promise<string[]> {
  const rendered = renderRbac(files);
  const stale: string[] = [];
  for (const [name, text] of rendered) {
    const current = await readFile(join(outDir, name), 'utf8').catch(() => undefined);
    if (current !== text) stale.push(join(outDir, name));
  }
  for (const f of await readdir(outDir).catch(() => [] as string[])) {
    if (f.endsWith('.yaml') && !rendered.has(f) && (await readFile(join(outDir, f), 'utf8')).startsWith(HEADER))
      stale.push(join(outDir, f));
  }
  return stale;
}
