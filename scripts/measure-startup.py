#!/usr/bin/env python3
"""Start-to-ready time and idle RSS of the release binary on SQLite (median of ten runs).

Build first: cargo build --release -p plinth. Usage: scripts/measure-startup.py"""
import subprocess, time, urllib.request, statistics, tempfile, os, shutil, socket
BIN=os.path.join(os.path.dirname(os.path.abspath(__file__)),"..","target","release","plinth")
def free_port():
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); return p
def one(data_dir):
    port=free_port()
    env=dict(os.environ, PLINTH_LOG="warn")
    t0=time.perf_counter()
    p=subprocess.Popen([BIN,"serve","--bind",f"127.0.0.1:{port}","--data-dir",data_dir],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL,env=env)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz",timeout=1) as r:
                if r.status==200: break
        except Exception: pass
        time.sleep(0.001)
    ready=(time.perf_counter()-t0)*1000
    time.sleep(3)
    rss=int([l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1])/1024
    p.terminate(); p.wait()
    return ready, rss
fresh=[];warm=[];rf=[];rw=[]
for i in range(10):
    d=tempfile.mkdtemp()
    r,m=one(d+"/data"); fresh.append(r); rf.append(m)
    r,m=one(d+"/data"); warm.append(r); rw.append(m)
    shutil.rmtree(d)
print("fresh data dir (creates schema): start-to-ready median %.1f ms, max %.1f ms; idle RSS median %.1f MB" % (statistics.median(fresh), max(fresh), statistics.median(rf)))
print("existing data dir:               start-to-ready median %.1f ms, max %.1f ms; idle RSS median %.1f MB" % (statistics.median(warm), max(warm), statistics.median(rw)))
