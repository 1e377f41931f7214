import { hash } from 'node:crypto';
import type { KubeObject } from 'bosun';
import type { Message } from './resource.js';

/** The image whose container prints the text; `MESSAGE_POD_IMAGE` overrides it. */
export const DEFAULT_IMAGE = 'busybox:1.36';
/** Labels every Message Pod carries, so the operator caches only its own Pods. */
export const POD_LABELS = { 'app.kubernetes.io/managed-by': 'bosun-message-operator' } as const;
/** An annotation on a Message that picks another image for its Pod (default DEFAULT_IMAGE or $MESSAGE_POD_IMAGE). */
export const IMAGE_ANNOTATION = 'myorg.dev/pod-image';
/**
 * `MESSAGE_POD_NODE=real` puts the Pods on the local cluster's real node (`bosun cluster up --node real`), which
 * carries this label and taint so that only Pods asking for it land there; otherwise no placement is set.
 */
export const REAL_NODE_PLACEMENT = {
  nodeSelector: { 'bosun.dev/node': 'real' },
  tolerations: [{ key: 'bosun.dev/real-node', operator: 'Exists', effect: 'NoSchedule' }],
} as const;
/** The annotation recording which text a Pod prints: Pod specs are immutable, so a new text means a new Pod. */
export const TEXT_HASH_ANNOTATION = 'myorg.dev/text-hash';

/** A Pod as this operator reads it. */
export type Pod = KubeObject<
  unknown,
  {
    phase?: string;
    containerStatuses?: {
      state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; message?: string } };
    }[];
  }
>;

/** The first 16 hex digits of the text's SHA-256. */
export function textHash(text: string): string {
  // The one-shot hash skips the Hash object a reconcile would otherwise build for every Message it reads.
  return hash('sha256', text, 'hex').slice(0, 16);
}

/** The Pod's name for a Message. */
export function podName(msg: Message): string {
  return `${msg.metadata.name ?? ''}-pod`;
}

/** The Pod a Message should have: prints the text, meets the `restricted` Pod Security profile. */
export function desiredPod(msg: Message): Pod {
  const image = msg.metadata.annotations?.[IMAGE_ANNOTATION] ?? process.env.MESSAGE_POD_IMAGE ?? DEFAULT_IMAGE;
  const text = msg.spec?.text ?? '';
  return {
    metadata: {
      name: podName(msg),
      namespace: msg.metadata.namespace,
      labels: { ...POD_LABELS },
      annotations: { [TEXT_HASH_ANNOTATION]: textHash(text) },
    },
    spec: {
      restartPolicy: 'Never',
      ...(process.env.MESSAGE_POD_NODE === 'real' ? REAL_NODE_PLACEMENT : {}),
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'main',
          image,
          command: ['echo'],
          args: [text],
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
        },
      ],
    },
  };
}

/**
 * What the operator caches of a Pod (`owns(Pod, { transform })`): metadata and spec as the API has
 * them (applyChild compares the spec it applies), and of the status only what `statusFromPod` reads.
 */
export function cachedPod(obj: KubeObject): KubeObject {
  const pod = obj as Pod;
  const status = pod.status;
  if (!status) return obj;
  const kept: NonNullable<Pod['status']> = { phase: status.phase };
  if (status.containerStatuses) kept.containerStatuses = status.containerStatuses.map((c) => ({ state: c.state }));
  return { apiVersion: pod.apiVersion, kind: pod.kind, metadata: pod.metadata, spec: pod.spec, status: kept } as KubeObject;
}

/** Whether an existing Pod prints the Message's current text. */
export function printsCurrentText(pod: Pod, msg: Message): boolean {
  return pod.metadata.annotations?.[TEXT_HASH_ANNOTATION] === textHash(msg.spec?.text ?? '');
}

/** The container waiting/terminated reasons that mean the Pod will not run without a change. */
const FAILING_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
]);

/** The Message status a Pod implies: phase, podName and the Ready condition. */
export function statusFromPod(pod: Pod): {
  phase: string;
  ready: { status: 'True' | 'False' | 'Unknown'; reason: string; message: string };
  failed: boolean;
} {
  const phase = pod.status?.phase ?? 'Pending';
  const name = pod.metadata.name ?? '';
  if (phase === 'Running' || phase === 'Succeeded') {
    return {
      phase,
      failed: false,
      ready: { status: 'True', reason: phase === 'Running' ? 'PodRunning' : 'PodSucceeded', message: `Pod ${name} is ${phase}` },
    };
  }
  const stuck = pod.status?.containerStatuses
    ?.map((c) => c.state?.waiting ?? c.state?.terminated)
    .find((s) => s?.reason && FAILING_REASONS.has(s.reason));
  if (stuck?.reason) {
    return {
      phase,
      failed: true,
      ready: { status: 'False', reason: stuck.reason, message: `Pod ${name}: ${stuck.message ?? stuck.reason}` },
    };
  }
  if (phase === 'Failed') return { phase, failed: true, ready: { status: 'False', reason: 'PodFailed', message: `Pod ${name} failed` } };
  if (phase === 'Unknown')
    return { phase, failed: false, ready: { status: 'Unknown', reason: 'PodUnknown', message: `Pod ${name} state is unknown` } };
  return { phase, failed: false, ready: { status: 'False', reason: 'PodPending', message: `Pod ${name} is Pending` } };
}
