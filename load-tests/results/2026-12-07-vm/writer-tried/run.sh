#!/bin/bash
# One by-hand run for results.txt: `serve` (BIN) on a fresh store, the ACK path only, driven by
# the load tool closed loop (64 in flight, D seconds); prints the rate and p99.9, the server's
# bytes written and CPU a request, the machine's idle share, and the writer's commit and sync
# series from /metrics. Run in DIR (default .), which holds certs/ (`pdp-provider certs init
# --dir certs`) and server.toml (as load-tests/profile-ack.sh writes it, ports 18494/18495,
# store.path = DIR/pdp.sqlite).
# usage: [DIR=...] run.sh BIN [D]
BIN=$1; D=${2:-8}
cd "${DIR:-.}"; rm -f pdp.sqlite*
RUST_LOG=warn $BIN serve --config server.toml > server.log 2>&1 &
SP=$!
for i in $(seq 50); do curl -s http://127.0.0.1:18495/health/live >/dev/null && break; sleep 0.2; done
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
idle() { awk '/^cpu /{print $5+$6, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
S0=$(cpu $SP); I0=($(idle)); W0=$(awk "/wchar/{print \$2}" /proc/$SP/io)
$BIN load --closed-loop --quiet --target https://127.0.0.1:18494 --certs certs --duration $D --concurrency 64 --name m --out load >/dev/null &
LP=$!
wait $LP
S1=$(cpu $SP); I1=($(idle)); W1=$(awk "/wchar/{print \$2}" /proc/$SP/io); 
N=$(python3 -c "import json;p=json.load(open('load/result.json'))['phases'][0];print(p['acked'])")
python3 -c "import json;p=json.load(open('load/result.json'))['phases'][0];print('$BIN rate %.0f p999 %.1f' % (p['achieved_rate'],p['ack']['p999_ms']))"
echo "wchar/req $(( (W1-W0)/N ))"; echo "server us/req $(( (S1-S0)*10000*1000/N ))e-3  idle $(( 100*(I1[0]-I0[0])/(I1[1]-I0[1]) ))%"
curl -s http://127.0.0.1:18495/metrics | grep -E "^pdp_journal_(sync|commit|batch)[a-z_]*_(sum|count)" 
kill $SP; wait $SP
