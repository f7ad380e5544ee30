# Per run and phase: rate, p99.9, slowest ACK, and the seconds of the load tool timeline whose slowest ACK passed 40 ms.
# usage: python3 seconds.py RUN_DIR...
import json,sys,os
for run in sys.argv[1:]:
    print(run)
    for ph in ['warm-1','warm-2','purge-during','purge-after','empty-1','seeded-1','empty-2','seeded-2']:
        f=os.path.join(run,ph,'result.json')
        if not os.path.exists(f): continue
        p=json.load(open(f))['phases'][0]; a=p['ack']
        tl=p['timeline']
        slow=[round(t['max_ms']) for t in tl if t['max_ms']>40]
        print(f"  {ph:13s} {p['achieved_rate']:8.0f}/s p99.9 {a['p999_ms']:6.1f} max {a['max_ms']:6.1f} ms; seconds with an ACK >40 ms: {len(slow)} {slow}")
