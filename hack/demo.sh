#!/usr/bin/env bash
# `make demo`: start the local cluster, the booking service and the three operators; apply the
# examples; show what the operators made; clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER_DIR=${CLUSTER_DIR:-.bosun/cluster}
export KUBECONFIG=$PWD/$CLUSTER_DIR/kubeconfig
node packages/bosun/bin/bosun.js cluster up --dir "$CLUSTER_DIR"
kubectl apply -f config/crd/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

work=$(mktemp -d)
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
BOOKING_API_KEY=dev node --import tsx operators/flightticket/booking/main.ts --port "$port" --data-dir "$work/booking" --log-level warn >"$work/booking.log" 2>&1 &
booking=$!
FLIGHTTICKET_BOOKING_URL=http://127.0.0.1:$port FLIGHTTICKET_API_KEY_SECRET=default/booking-api-key \
  node packages/bosun/bin/bosun.js run message application flightticket --standalone --metrics-addr 0 --health-addr 0 >"$work/operator.log" 2>&1 &
op=$!
cleanup() {
  kill "$op" 2>/dev/null || true; wait "$op" 2>/dev/null || true
  kill "$booking" 2>/dev/null || true; wait "$booking" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

echo "== kubectl apply -f examples/"
kubectl apply -f examples/booking-secret.yaml -f examples/message.yaml -f examples/application.yaml -f examples/flightticket.yaml
kubectl wait --for=condition=Ready message/example-message application/example-app flightticket/example-ticket --timeout=120s
echo "== kubectl get messages,applications,flighttickets"
kubectl get messages,applications,flighttickets
echo "== what the operators made"
kubectl get pods,deployments,services -l 'app.kubernetes.io/managed-by in (bosun-message-operator,bosun-application)'
echo "== the booking service's record of the ticket"
curl -fs -H "Authorization: Bearer dev" "http://127.0.0.1:$port/v1/bookings?state=active"; echo
echo "== the operator's log (first lines)"
grep -m 3 '"msg":"Reconciling Message"' "$work/operator.log" || true
echo "== cleaning up"
kubectl delete -f examples/flightticket.yaml -f examples/application.yaml -f examples/message.yaml --wait=true
echo "== bookings still active after delete (expect none):"
curl -fs -H "Authorization: Bearer dev" "http://127.0.0.1:$port/v1/bookings?state=active"; echo
kubectl delete -f examples/booking-secret.yaml
