"""The kopf benchmark peer of bosun's Message operator.

It does the same work as bosun's Message operator (operators/message, handlers style), written the
way kopf users write operators: one Pod per Message (``<name>-pod``, adopted with ``kopf.adopt``),
replaced when the text changes, the Message status kept from the Pod (written only when it
changes), and the same Events (CreatedPod, ReplacingPod, a Warning when the Pod fails).

Run:  KUBECONFIG=... kopf run --standalone --all-namespaces main.py

Who does what:
- ``on.create`` / ``on.update`` / ``on.resume`` on the Message ensure the Pod exists and carries
  the current text (a Pod with an old text hash is deleted; its DELETED event brings the new one).
- ``on.event`` on the owned Pods writes the Message status (phase, podName, observedGeneration,
  Ready condition), only when it changes, and recreates a Pod deleted under a live Message.
  (``on.event``, not ``on.field``: a change-detecting handler would annotate every Pod.)
- ``kopf.index`` on the Messages is the in-memory view of the Messages the Pod events read, so a
  Pod event costs no GET of its Message.
"""

import datetime
import hashlib
import os
from typing import Any

import kopf
import kubernetes
from kubernetes.client.rest import ApiException

GROUP = 'myorg.dev'
VERSION = 'v1'
PLURAL = 'messages'
OPERATOR_NAME = 'kopf-message-operator'
MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
MESSAGE_LABEL = 'myorg.dev/message'
TEXT_HASH_ANNOTATION = 'myorg.dev/text-hash'
IMAGE_ANNOTATION = 'myorg.dev/pod-image'
DEFAULT_IMAGE = 'busybox:1.36'
# Container waiting/terminated reasons that mean the Pod will not run without a change.
FAILING_REASONS = {'ErrImagePull', 'ImagePullBackOff', 'InvalidImageName',
                   'CreateContainerConfigError', 'CreateContainerError', 'CrashLoopBackOff'}

# Set by the startup handler, once kopf has loaded the kubeconfig.
core_v1: kubernetes.client.CoreV1Api = None  # type: ignore[assignment]
custom_api: kubernetes.client.CustomObjectsApi = None  # type: ignore[assignment]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Sets up the API clients; the settings follow kopf's documented advice for production."""
    global core_v1, custom_api
    # kopf's docs advise bounded watch requests so a silently dead stream is noticed and renewed.
    settings.watching.connect_timeout = 1 * 60
    settings.watching.server_timeout = 10 * 60
    kubernetes.config.load_kube_config()
    api_client = kubernetes.client.ApiClient()
    core_v1 = kubernetes.client.CoreV1Api(api_client)
    custom_api = kubernetes.client.CustomObjectsApi(api_client)


def text_hash(text: str) -> str:
    """The annotation value that ties a Pod to the text it was made for."""
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def pod_name_for(message_name: str) -> str:
    """The name of the one Pod a Message owns."""
    return f'{message_name}-pod'


def image_for(message: dict[str, Any]) -> str:
    """The Pod's image: the Message's pod-image annotation, else $MESSAGE_POD_IMAGE, else busybox."""
    annotations = message['metadata'].get('annotations') or {}
    return annotations.get(IMAGE_ANNOTATION) or os.environ.get('MESSAGE_POD_IMAGE') or DEFAULT_IMAGE


def build_pod(message: dict[str, Any], text: str) -> dict[str, Any]:
    """The Pod a Message wants, owned by the Message."""
    name = message['metadata']['name']
    pod: dict[str, Any] = {
        'apiVersion': 'v1',
        'kind': 'Pod',
        'metadata': {
            'name': pod_name_for(name),
            'labels': {
                MANAGED_BY_LABEL: OPERATOR_NAME,
                MESSAGE_LABEL: name,
            },
            'annotations': {TEXT_HASH_ANNOTATION: text_hash(text)},
        },
        'spec': {
            'restartPolicy': 'Never',
            'automountServiceAccountToken': False,
            'securityContext': {
                'runAsNonRoot': True,
                'runAsUser': 65532,
                'runAsGroup': 65532,
                'seccompProfile': {'type': 'RuntimeDefault'},
            },
            'containers': [{
                'name': 'main',
                'image': image_for(message),
                'command': ['echo'],
                'args': [text],
                'securityContext': {
                    'allowPrivilegeEscalation': False,
                    'readOnlyRootFilesystem': True,
                    'capabilities': {'drop': ['ALL']},
                },
                'resources': {
                    'requests': {'cpu': '10m', 'memory': '16Mi'},
                    'limits': {'cpu': '100m', 'memory': '32Mi'},
                },
            }],
        },
    }
    kopf.adopt(pod, owner=message)
    return pod


def read_pod(namespace: str, name: str) -> Any | None:
    """The Pod as the API server has it, or None when there is none."""
    try:
        return core_v1.read_namespaced_pod(name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def is_controlled_by(pod_meta: Any, owner_uid: str) -> bool:
    """Whether the Pod's controller owner reference points at the given Message uid."""
    for ref in pod_meta.owner_references or []:
        if ref.controller and ref.uid == owner_uid:
            return True
    return False


def ensure_pod(message: dict[str, Any], text: str) -> None:
    """Creates the Message's Pod when missing; deletes it when it prints an old text (its DELETED
    event then creates the new one). A Pod already on its way out is left to go."""
    meta = message['metadata']
    namespace, name, uid = meta['namespace'], meta['name'], meta['uid']
    pod_name = pod_name_for(name)
    pod = read_pod(namespace, pod_name)
    if pod is None:
        try:
            core_v1.create_namespaced_pod(namespace, build_pod(message, text))
        except ApiException as e:
            if e.status != 409:
                raise
            return  # Created meanwhile by another handler.
        kopf.event(message, type='Normal', reason='CreatedPod', message=f'Created Pod {pod_name}')
        return
    if not is_controlled_by(pod.metadata, uid):
        raise kopf.PermanentError(f'Pod {namespace}/{pod_name} exists and is not controlled by '
                                  f'Message {name}; delete or rename it.')
    if pod.metadata.deletion_timestamp is not None:
        return
    if (pod.metadata.annotations or {}).get(TEXT_HASH_ANNOTATION) == text_hash(text):
        return
    # Pod specs are immutable: a new text means a new Pod.
    try:
        core_v1.delete_namespaced_pod(
            pod_name, namespace,
            body=kubernetes.client.V1DeleteOptions(
                preconditions=kubernetes.client.V1Preconditions(uid=pod.metadata.uid)))
    except ApiException as e:
        if e.status != 404:
            raise
    kopf.event(message, type='Normal', reason='ReplacingPod', message=f'Text changed; replacing Pod {pod_name}')


def message_ref(body: kopf.Body | dict[str, Any]) -> dict[str, Any]:
    """The parts of a Message the Pod and its Events are built from."""
    meta = body['metadata']
    return {
        'apiVersion': body['apiVersion'],
        'kind': body['kind'],
        'metadata': {
            'name': meta['name'],
            'namespace': meta['namespace'],
            'uid': meta['uid'],
            'generation': meta.get('generation'),
            'labels': dict(meta.get('labels') or {}),
            'annotations': dict(meta.get('annotations') or {}),
        },
    }


@kopf.index(GROUP, VERSION, PLURAL)
def messages_by_key(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """The Messages by (namespace, name): what the Pod event handler reads instead of a GET."""
    message = message_ref(body)
    message['text'] = body.get('spec', {}).get('text', '')
    message['status'] = dict(body.get('status') or {})
    return {(namespace, name): message}


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field='spec.text')
@kopf.on.resume(GROUP, VERSION, PLURAL)
def reconcile_message(body: kopf.Body, spec: kopf.Spec, **_: Any) -> None:
    """Ensures the Message's Pod exists and prints the current text."""
    ensure_pod(message_ref(body), spec.get('text', ''))


def readiness_of(pod: kopf.Body) -> tuple[str, tuple[str, str, str], bool]:
    """The Pod's phase, the Ready condition (status, reason, message) it implies, and whether the
    Pod will not get anywhere without a change."""
    name = pod['metadata']['name']
    phase = pod.get('status', {}).get('phase') or 'Pending'
    if phase in ('Running', 'Succeeded'):
        return phase, ('True', f'Pod{phase}', f'Pod {name} is {phase}'), False
    for cs in pod.get('status', {}).get('containerStatuses') or []:
        state = cs.get('state') or {}
        stuck = state.get('waiting') or state.get('terminated') or {}
        reason = stuck.get('reason')
        if reason in FAILING_REASONS:
            return phase, ('False', reason, f'Pod {name}: {stuck.get("message") or reason}'), True
    if phase == 'Failed':
        return phase, ('False', 'PodFailed', f'Pod {name} failed'), True
    if phase == 'Unknown':
        return phase, ('Unknown', 'PodUnknown', f'Pod {name} state is unknown'), False
    return phase, ('False', 'PodPending', f'Pod {name} is Pending'), False


def write_status(message: dict[str, Any], phase: str, pod_name: str, ready: tuple[str, str, str]) -> bool:
    """Writes phase, podName, observedGeneration and the Ready condition through the status
    subresource when they differ from the Message's status; tells whether it wrote. The Ready
    condition keeps its lastTransitionTime while its status stays the same."""
    current = message['status']
    generation = message['metadata']['generation']
    status, reason, text = ready
    conditions = list(current.get('conditions') or [])
    old = next((c for c in conditions if c.get('type') == 'Ready'), None)
    if old is not None and old.get('status') == status and old.get('lastTransitionTime'):
        transition = old['lastTransitionTime']
    else:
        transition = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    condition = {
        'type': 'Ready',
        'status': status,
        'reason': reason,
        'message': text,
        'lastTransitionTime': transition,
        'observedGeneration': generation,
    }
    conditions = [condition if c.get('type') == 'Ready' else c for c in conditions] if old else conditions + [condition]
    desired = {'phase': phase, 'podName': pod_name, 'observedGeneration': generation, 'conditions': conditions}
    if all(current.get(k) == v for k, v in desired.items()):
        return False
    meta = message['metadata']
    try:
        # A merge patch of the status: a replace would need the latest resourceVersion.
        custom_api.patch_namespaced_custom_object_status(
            GROUP, VERSION, meta['namespace'], PLURAL, meta['name'], {'status': desired})
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


@kopf.on.event('', 'v1', 'pods', labels={MANAGED_BY_LABEL: OPERATOR_NAME, MESSAGE_LABEL: kopf.PRESENT})
def pod_event(event: kopf.RawEvent, body: kopf.Body, namespace: str, labels: kopf.Labels,
              messages_by_key: kopf.Index[Any, Any], **_: Any) -> None:
    """Keeps the owning Message's status from its Pod; replaces a Pod that is gone or prints an
    old text."""
    entries = messages_by_key.get((namespace, labels[MESSAGE_LABEL]))
    if not entries:
        return  # The Message is gone: the garbage collector removes its Pod.
    message = next(iter(entries))
    if not is_owned_dict(body, message['metadata']['uid']):
        return
    pod_name = body['metadata']['name']

    if event.get('type') == 'DELETED':
        ensure_pod(message, message['text'])
        write_status(message, 'Pending', pod_name, ('False', 'PodReplacing', f'Replacing Pod {pod_name}'))
        return
    if body['metadata'].get('annotations', {}).get(TEXT_HASH_ANNOTATION) != text_hash(message['text']):
        ensure_pod(message, message['text'])
        return

    phase, ready, failed = readiness_of(body)
    if write_status(message, phase, pod_name, ready) and failed:
        kopf.event(message, type='Warning', reason=ready[1], message=ready[2])


def is_owned_dict(body: kopf.Body, owner_uid: str) -> bool:
    """Whether a Pod body's controller owner reference points at the given Message uid."""
    for ref in body['metadata'].get('ownerReferences', []):
        if ref.get('controller') and ref.get('uid') == owner_uid:
            return True
    return False
