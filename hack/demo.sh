#!/usr/bin/env bash
# `make demo`: start the local cluster, run the operators, apply the examples, show what they made, clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER_DIR=${CLUSTER_DIR:-.bosun/cluster}
export KUBECONFIG=$PWD/$CLUSTER_DIR/kubeconfig
node bin/bosun.js cluster up --dir "$CLUSTER_DIR"
kubectl apply -f config/crd/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

log=$(mktemp)
node bin/bosun.js run message --standalone --metrics-addr 0 --health-addr 0 >"$log" 2>&1 &
op=$!
trap 'kill $op 2>/dev/null || true; wait $op 2>/dev/null || true; rm -f "$log"' EXIT

echo "== kubectl apply -f examples/message.yaml"
kubectl apply -f examples/message.yaml
kubectl wait --for=condition=Ready message/example-message --timeout=60s
echo "== kubectl get messages"
kubectl get messages
echo "== kubectl get pods -l app.kubernetes.io/managed-by=bosun-message-operator"
kubectl get pods -l app.kubernetes.io/managed-by=bosun-message-operator
echo "== the operator's log"
grep -m 3 'Reconciling Message' "$log" || true
echo "== cleaning up"
kubectl delete -f examples/message.yaml --wait=true
