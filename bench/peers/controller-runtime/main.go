// Command message-operator is the controller-runtime benchmark peer of bosun's Message operator.
//
// It does the same work as bosun's Message operator (operators/message, reconcile style), written
// the way kubebuilder users write a controller: per Message one Pod `<name>-pod` controlled by the
// Message, replaced when the text changes (Pod specs are immutable), the Message status
// (phase, podName, observedGeneration, Ready condition) written from the Pod only when it
// changes, and the same Events (CreatedPod, ReplacingPod, a Warning when the Pod fails).
//
// Run: message-operator --kubeconfig=PATH (or KUBECONFIG=PATH) [--workers=8]
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

const (
	operatorName       = "controller-runtime-message-operator"
	managedByLabel     = "app.kubernetes.io/managed-by"
	messageLabel       = "myorg.dev/message"
	textHashAnnotation = "myorg.dev/text-hash"
	imageAnnotation    = "myorg.dev/pod-image"
	defaultImage       = "busybox:1.36"
	readyCondition     = "Ready"
)

// GroupVersion is the API group and version of the Message resource.
var GroupVersion = schema.GroupVersion{Group: "myorg.dev", Version: "v1"}

// MessageSpec is what a Message asks for: a text to print.
type MessageSpec struct {
	Text string `json:"text"`
}

// MessageStatus is what the operator observed of the Message's Pod.
type MessageStatus struct {
	Phase              string             `json:"phase,omitempty"`
	PodName            string             `json:"podName,omitempty"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

// Message is the myorg.dev/v1 Message custom resource.
type Message struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              MessageSpec   `json:"spec,omitempty"`
	Status            MessageStatus `json:"status,omitempty"`
}

// MessageList is a list of Messages, as the cache lists them.
type MessageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Message `json:"items"`
}

// DeepCopyInto copies the status into out, sharing nothing.
func (in *MessageStatus) DeepCopyInto(out *MessageStatus) {
	*out = *in
	if in.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(in.Conditions))
		for i := range in.Conditions {
			in.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies the Message into out, sharing nothing.
func (in *Message) DeepCopyInto(out *Message) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = in.Spec
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of the Message that shares nothing with it.
func (in *Message) DeepCopy() *Message {
	if in == nil {
		return nil
	}
	out := new(Message)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *Message) DeepCopyObject() runtime.Object {
	return in.DeepCopy()
}

// DeepCopyInto copies the list into out, sharing nothing.
func (in *MessageList) DeepCopyInto(out *MessageList) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]Message, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopyObject implements runtime.Object.
func (in *MessageList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(MessageList)
	in.DeepCopyInto(out)
	return out
}

// MessageReconciler keeps one Pod per Message and the Message status in line with it.
type MessageReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
}

// textHash is the annotation value that ties a Pod to the text it was made for.
func textHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])[:16]
}

// imageFor is the image of a Message's Pod: the Message's myorg.dev/pod-image annotation, else
// $MESSAGE_POD_IMAGE, else busybox:1.36 (as bosun's Message operator picks it).
func imageFor(msg *Message) string {
	if image, ok := msg.Annotations[imageAnnotation]; ok {
		return image
	}
	if image, ok := os.LookupEnv("MESSAGE_POD_IMAGE"); ok {
		return image
	}
	return defaultImage
}

// podFor builds the Pod a Message wants, controlled by the Message.
func (r *MessageReconciler) podFor(msg *Message) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      msg.Name + "-pod",
			Namespace: msg.Namespace,
			Labels: map[string]string{
				managedByLabel: operatorName,
				messageLabel:   msg.Name,
			},
			Annotations: map[string]string{textHashAnnotation: textHash(msg.Spec.Text)},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				RunAsGroup:     ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:    "main",
				Image:   imageFor(msg),
				Command: []string{"echo"},
				Args:    []string{msg.Spec.Text},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("10m"),
						corev1.ResourceMemory: resource.MustParse("16Mi"),
					},
					Limits: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("100m"),
						corev1.ResourceMemory: resource.MustParse("32Mi"),
					},
				},
			}},
		},
	}
	if err := controllerutil.SetControllerReference(msg, pod, r.Scheme); err != nil {
		return nil, err
	}
	return pod, nil
}

// failingReasons are the container waiting/terminated reasons that mean the Pod will not run
// without a change.
var failingReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "CrashLoopBackOff": true,
}

// podReadiness is what a Pod says about its Message: the Ready condition, and whether the Pod
// will not get anywhere without a change.
type podReadiness struct {
	status  metav1.ConditionStatus
	reason  string
	message string
	failed  bool
}

// readinessOf maps a Pod to the Message's Ready condition.
func readinessOf(pod *corev1.Pod) (corev1.PodPhase, podReadiness) {
	phase := pod.Status.Phase
	if phase == "" {
		phase = corev1.PodPending
	}
	switch phase {
	case corev1.PodRunning:
		return phase, podReadiness{metav1.ConditionTrue, "PodRunning", fmt.Sprintf("Pod %s is Running", pod.Name), false}
	case corev1.PodSucceeded:
		return phase, podReadiness{metav1.ConditionTrue, "PodSucceeded", fmt.Sprintf("Pod %s is Succeeded", pod.Name), false}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		reason, message := "", ""
		if w := cs.State.Waiting; w != nil {
			reason, message = w.Reason, w.Message
		} else if t := cs.State.Terminated; t != nil {
			reason, message = t.Reason, t.Message
		}
		if failingReasons[reason] {
			if message == "" {
				message = reason
			}
			return phase, podReadiness{metav1.ConditionFalse, reason, fmt.Sprintf("Pod %s: %s", pod.Name, message), true}
		}
	}
	switch phase {
	case corev1.PodFailed:
		return phase, podReadiness{metav1.ConditionFalse, "PodFailed", fmt.Sprintf("Pod %s failed", pod.Name), true}
	case corev1.PodUnknown:
		return phase, podReadiness{metav1.ConditionUnknown, "PodUnknown", fmt.Sprintf("Pod %s state is unknown", pod.Name), false}
	default:
		return phase, podReadiness{metav1.ConditionFalse, "PodPending", fmt.Sprintf("Pod %s is Pending", pod.Name), false}
	}
}

// updateStatus writes phase, podName, observedGeneration and the Ready condition through the
// status subresource, only when they differ from the cached status. It tells whether it wrote.
func (r *MessageReconciler) updateStatus(ctx context.Context, msg *Message, phase, podName string, ready podReadiness) (bool, error) {
	orig := msg.DeepCopy()
	msg.Status.Phase = phase
	msg.Status.PodName = podName
	msg.Status.ObservedGeneration = msg.Generation
	meta.SetStatusCondition(&msg.Status.Conditions, metav1.Condition{
		Type:               readyCondition,
		Status:             ready.status,
		Reason:             ready.reason,
		Message:            ready.message,
		ObservedGeneration: msg.Generation,
	})
	if equality.Semantic.DeepEqual(orig.Status, msg.Status) {
		return false, nil
	}
	// A merge patch of the status: an update would need the latest resourceVersion.
	if err := r.Status().Patch(ctx, msg, client.MergeFrom(orig)); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return true, nil
}

// Reconcile makes the world match one Message: exactly one Pod printing its text, and a status
// mirroring that Pod.
func (r *MessageReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	// The logger from the context already carries the name and namespace.
	log.Info("Reconciling Message")

	var msg Message
	if err := r.Get(ctx, req.NamespacedName, &msg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !msg.DeletionTimestamp.IsZero() {
		// Going: garbage collection removes the Pod it owns.
		return ctrl.Result{}, nil
	}

	podName := msg.Name + "-pod"
	var pod corev1.Pod
	err := r.Get(ctx, types.NamespacedName{Namespace: msg.Namespace, Name: podName}, &pod)
	if apierrors.IsNotFound(err) {
		desired, err := r.podFor(&msg)
		if err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, desired); err != nil {
			if apierrors.IsAlreadyExists(err) {
				// The cache has not seen it yet; its event brings us back.
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, err
		}
		r.Recorder.Eventf(&msg, nil, corev1.EventTypeNormal, "CreatedPod", "Create", "Created Pod %s", podName)
		// The Pod's create event brings us back to write the status.
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if !metav1.IsControlledBy(&pod, &msg) {
		return ctrl.Result{}, fmt.Errorf("pod %s/%s exists and is not controlled by Message %s; delete or rename it",
			pod.Namespace, pod.Name, msg.Name)
	}

	if pod.Annotations[textHashAnnotation] != textHash(msg.Spec.Text) {
		// Pod specs are immutable: a new text means a new Pod. Its delete event brings us back to create it.
		if pod.DeletionTimestamp.IsZero() {
			err := r.Delete(ctx, &pod, client.Preconditions{UID: &pod.UID})
			if err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
			r.Recorder.Eventf(&msg, nil, corev1.EventTypeNormal, "ReplacingPod", "Delete", "Text changed; replacing Pod %s", podName)
		}
		_, err := r.updateStatus(ctx, &msg, string(corev1.PodPending), podName, podReadiness{
			status: metav1.ConditionFalse, reason: "PodReplacing", message: fmt.Sprintf("Replacing Pod %s", podName),
		})
		return ctrl.Result{}, err
	}

	phase, ready := readinessOf(&pod)
	changed, err := r.updateStatus(ctx, &msg, string(phase), podName, ready)
	if err != nil {
		return ctrl.Result{}, err
	}
	if changed && ready.failed {
		r.Recorder.Eventf(&msg, nil, corev1.EventTypeWarning, ready.reason, "Reconcile", ready.message)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller: Messages, and the Pods they own.
func (r *MessageReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&Message{}).
		Owns(&corev1.Pod{}).
		Named("message").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func main() {
	var metricsAddr, probeAddr string
	var enableLeaderElection bool
	var workers int
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0",
		"The address the metrics endpoint binds to, e.g. :8080; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", "0",
		"The address the health probe endpoint binds to, e.g. :8081; 0 disables it.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election, so only one instance of the operator is active.")
	var namespace string
	flag.StringVar(&namespace, "namespace", "", "Watch only this namespace; empty watches all namespaces.")
	flag.IntVar(&workers, "workers", 8, "How many Messages are reconciled at once (MaxConcurrentReconciles).")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	// ctrl.GetConfigOrDie reads the --kubeconfig flag that controller-runtime registers.
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	sch := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(sch); err != nil {
		setupLog.Error(err, "unable to register the core types")
		os.Exit(1)
	}
	builder := &scheme.Builder{GroupVersion: GroupVersion}
	builder.Register(&Message{}, &MessageList{})
	if err := builder.AddToScheme(sch); err != nil {
		setupLog.Error(err, "unable to register the Message type")
		os.Exit(1)
	}

	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		// Cache only this operator's Pods, as bosun's Message operator does.
		&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{managedByLabel: operatorName})},
	}}
	if namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 sch,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         enableLeaderElection,
		LeaderElectionID:       "message-operator.myorg.dev",
	})
	if err != nil {
		setupLog.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	if err := (&MessageReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("message-controller"),
	}).SetupWithManager(mgr, workers); err != nil {
		setupLog.Error(err, "unable to create the controller", "controller", "Message")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up the ready check")
		os.Exit(1)
	}

	setupLog.Info("starting manager", "workers", workers)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "problem running manager")
		os.Exit(1)
	}
}
