"""Each server's CPU samples a request, by category (the handler; the kernel's writev and
recvfrom; rustls; hyper; Tokio; thread switches), the bare stack's total a request = 100.

usage: cats.py A.folded A_RATE B.folded B_RATE (rates: the load tool's, finds/s)
"""
import collections, sys, re
def cats(path, rate):
    c=collections.Counter(); tot=0
    for line in open(path):
        stack,n=line.rstrip().rsplit(' ',1); n=int(n); tot+=n
        fr=stack.split(';')
        s=stack
        if 'pdp_provider::http::route' in s: k='route (handler)'
        elif 'finish_task_switch' in fr[-1] or 'schedule' in s and '__x64_sys_futex' in s: k='switch/futex'
        elif '__x64_sys_epoll_wait' in s: k='epoll_wait'
        elif '__x64_sys_writev' in s or 'do_writev' in s: k='writev (kernel)'
        elif '__x64_sys_recvfrom' in s: k='recvfrom (kernel)'
        elif 'rustls' in s and ('encrypt' in s or 'seal' in s or 'gcm' in s): k='tls crypto'
        elif 'rustls' in s: k='rustls other'
        elif 'hyper::proto::h1::role' in s: k='hyper parse/encode'
        elif 'hyper' in s: k='hyper other'
        elif 'tokio::runtime' in s: k='tokio runtime'
        elif 'malloc' in s or 'free' in s: k='alloc other'
        else: k='other'
        c[k]+=n
    return {k:v/rate for k,v in c.items()}, tot/rate
a,at=cats(sys.argv[1], float(sys.argv[2])); b,bt=cats(sys.argv[3], float(sys.argv[4]))
norm=bt
print('per request, bare total = 100')
for k in sorted(set(a)|set(b), key=lambda k:-(a.get(k,0)-b.get(k,0))):
    print('%-22s A %6.1f  B %6.1f  diff %6.1f'%(k,100*a.get(k,0)/norm,100*b.get(k,0)/norm,100*(a.get(k,0)-b.get(k,0))/norm))
print('total A %.1f B %.1f'%(100*at/norm,100*bt/norm))
