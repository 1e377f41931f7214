// Command widget-webhook is the controller-runtime peer of bench/webhook.ts: a validating admission webhook
// for latency.bench.bosun.dev/v1 Widgets that refuses spec.size above 100, served by controller-runtime's
// webhook.Server (the server a kubebuilder manager runs) with its certificate directory, the way
// `kubebuilder create webhook --programmatic-validation` writes it (admission.WithValidator on a typed object).
//
// Run: widget-webhook --port=N --cert-dir=DIR --path=/validate/<name> [--host=127.0.0.1]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// maxSize is the largest spec.size admitted; the same bound as the bosun webhook of bench/webhook.ts.
const maxSize = 100

// GroupVersion is the API group and version of the Widget test resource.
var GroupVersion = schema.GroupVersion{Group: "latency.bench.bosun.dev", Version: "v1"}

// WidgetSpec is what a Widget asks for.
type WidgetSpec struct {
	Size int64 `json:"size"`
}

// Widget is the latency.bench.bosun.dev/v1 Widget the benchmark creates.
type Widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WidgetSpec `json:"spec,omitempty"`
}

// DeepCopyInto copies the Widget into out, sharing nothing.
func (in *Widget) DeepCopyInto(out *Widget) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = in.Spec
}

// DeepCopyObject implements runtime.Object.
func (in *Widget) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(Widget)
	in.DeepCopyInto(out)
	return out
}

// sizeValidator refuses a Widget whose spec.size is above maxSize.
type sizeValidator struct{}

func (sizeValidator) check(w *Widget) (admission.Warnings, error) {
	if w.Spec.Size > maxSize {
		return nil, fmt.Errorf("spec.size %d is above %d. Fix: ask for at most %d", w.Spec.Size, maxSize, maxSize)
	}
	return nil, nil
}

func (v sizeValidator) ValidateCreate(_ context.Context, w *Widget) (admission.Warnings, error) {
	return v.check(w)
}

func (v sizeValidator) ValidateUpdate(_ context.Context, _, w *Widget) (admission.Warnings, error) {
	return v.check(w)
}

func (sizeValidator) ValidateDelete(context.Context, *Widget) (admission.Warnings, error) {
	return nil, nil
}

func main() {
	var host, certDir, path string
	var port int
	flag.StringVar(&host, "host", "127.0.0.1", "Address to listen on.")
	flag.IntVar(&port, "port", 9443, "Port to listen on.")
	flag.StringVar(&certDir, "cert-dir", "", "Directory with tls.crt and tls.key.")
	flag.StringVar(&path, "path", "", "Path the webhook answers on, e.g. /validate/<name>.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	if certDir == "" || path == "" {
		fmt.Fprintln(os.Stderr, "widget-webhook: --cert-dir and --path are required")
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	scheme := runtime.NewScheme()
	scheme.AddKnownTypes(GroupVersion, &Widget{})
	metav1.AddToGroupVersion(scheme, GroupVersion)

	server := webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: certDir})
	server.Register(path, admission.WithValidator[*Widget](scheme, sizeValidator{}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Start(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "widget-webhook: %v\n", err)
		os.Exit(1)
	}
}
