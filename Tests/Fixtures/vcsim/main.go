// ferry-vcsim: govmomi's vSphere simulator (a standalone ESXi, HTTPS on) with the behaviours of
// a real host's /folder service that vcsim lacks, each switched on by a flag, so ferry's ESXi
// client can be tested against them: Basic auth then a vmware_soap_session cookie, cookie expiry,
// 503 rate limiting, connections cut mid-body, Range ignored, per-request throttling.
//
// It prints one JSON line on stdout ({"url","datastore","dsName","fingerprint"}) once it serves,
// and exits when its standard input closes (so it never outlives the test that started it).
// Counters of what /folder served are at GET /ferry-stats.
//
// Built by build.sh with Debian's golang-go and golang-github-vmware-govmomi-dev (GOPATH mode).
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25/types"
)

type options struct {
	user, pass  string
	cookieTTL   time.Duration
	busyEvery   int64
	cutEvery    int64
	ignoreRange bool
	throttle    int64 // bytes per second per request, 0 = unlimited
}

type wrapper struct {
	inner http.Handler
	opt   options

	mu      sync.Mutex
	cookies map[string]time.Time

	requests, ranged, bytes, basic, rejected, busy, cuts int64
}

const cookieName = "vmware_soap_session"

func (w *wrapper) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ferry-stats" {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]int64{
			"requests": atomic.LoadInt64(&w.requests), "ranged": atomic.LoadInt64(&w.ranged),
			"bytes": atomic.LoadInt64(&w.bytes), "basic": atomic.LoadInt64(&w.basic),
			"rejected": atomic.LoadInt64(&w.rejected), "busy": atomic.LoadInt64(&w.busy),
			"cuts": atomic.LoadInt64(&w.cuts),
		})
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/folder/") {
		w.inner.ServeHTTP(rw, r)
		return
	}
	n := atomic.AddInt64(&w.requests, 1)
	if !w.authorize(rw, r) {
		atomic.AddInt64(&w.rejected, 1)
		rw.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
		http.Error(rw, "401 Unauthorized", http.StatusUnauthorized)
		return
	}
	if w.opt.busyEvery > 0 && n%w.opt.busyEvery == 0 {
		atomic.AddInt64(&w.busy, 1)
		http.Error(rw, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Range") != "" {
		atomic.AddInt64(&w.ranged, 1)
	}
	if w.opt.ignoreRange {
		r.Header.Del("Range")
	}
	cut := w.opt.cutEvery > 0 && n%w.opt.cutEvery == 0 && r.Method == http.MethodGet
	out := &countingWriter{ResponseWriter: rw, w: w, throttle: w.opt.throttle, cut: cut}
	w.inner.ServeHTTP(out, r)
	if out.cutDone {
		atomic.AddInt64(&w.cuts, 1)
		panic(http.ErrAbortHandler) // closes the connection without finishing the body
	}
}

// authorize accepts a live cookie this wrapper issued, or Basic credentials (and then issues a
// cookie, as ESXi does).
func (w *wrapper) authorize(rw http.ResponseWriter, r *http.Request) bool {
	if c, err := r.Cookie(cookieName); err == nil {
		w.mu.Lock()
		issued, ok := w.cookies[c.Value]
		w.mu.Unlock()
		if ok && (w.opt.cookieTTL == 0 || time.Since(issued) < w.opt.cookieTTL) {
			return true
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != w.opt.user || pass != w.opt.pass {
		return false
	}
	atomic.AddInt64(&w.basic, 1)
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	value := hex.EncodeToString(raw[:])
	w.mu.Lock()
	w.cookies[value] = time.Now()
	w.mu.Unlock()
	http.SetCookie(rw, &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true, Secure: true})
	return true
}

// countingWriter counts body bytes, throttles them, and for a cut request stops after half the
// body it was asked to send.
type countingWriter struct {
	http.ResponseWriter
	w        *wrapper
	throttle int64
	cut      bool
	cutDone  bool
	budget   int64
	started  bool
}

func (c *countingWriter) WriteHeader(code int) {
	if c.cut {
		if length := c.Header().Get("Content-Length"); length != "" {
			var n int64
			fmt.Sscan(length, &n)
			c.budget = n / 2
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.cutDone {
		return 0, io.ErrClosedPipe
	}
	if c.cut && int64(len(p)) >= c.budget {
		p = p[:c.budget]
		c.cutDone = true
	}
	if c.cut {
		c.budget -= int64(len(p))
	}
	written := 0
	for written < len(p) {
		chunk := p[written:]
		if c.throttle > 0 && len(chunk) > 65536 {
			chunk = chunk[:65536]
		}
		n, err := c.ResponseWriter.Write(chunk)
		written += n
		atomic.AddInt64(&c.w.bytes, int64(n))
		if err != nil {
			return written, err
		}
		if c.throttle > 0 {
			time.Sleep(time.Duration(int64(n) * int64(time.Second) / c.throttle))
		}
	}
	if c.cutDone {
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		return written, io.ErrClosedPipe
	}
	return written, nil
}

func main() {
	var opt options
	flag.StringVar(&opt.user, "user", "root", "the user name /folder and SOAP Login accept")
	flag.StringVar(&opt.pass, "pass", "secret", "the password /folder and SOAP Login accept")
	flag.DurationVar(&opt.cookieTTL, "cookie-ttl", 0, "a /folder cookie expires this long after it was issued (0: never)")
	flag.Int64Var(&opt.busyEvery, "busy-every", 0, "answer every Nth /folder request 503 (0: never)")
	flag.Int64Var(&opt.cutEvery, "cut-every", 0, "cut the connection halfway through every Nth /folder body (0: never)")
	flag.BoolVar(&opt.ignoreRange, "ignore-range", false, "ignore Range headers (answer 200 with the whole file)")
	flag.Int64Var(&opt.throttle, "throttle", 0, "bytes per second per request on /folder (0: unlimited)")
	power := flag.String("power", "on", "power state of the simulated VMs: on or off")
	snapshot := flag.String("snapshot", "", "give every VM a snapshot of this name, the way ESXi does: each disk's backing becomes DISK-000001.vmdk over the old file as its parent (vcsim itself leaves the backing alone)")
	flag.Parse()

	model := simulator.ESX()
	if *power == "off" {
		model.Autostart = false
	}
	if err := model.Create(); err != nil {
		fmt.Fprintln(os.Stderr, "ferry-vcsim:", err)
		os.Exit(1)
	}
	defer model.Remove()
	model.Service.TLS = new(tls.Config)
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(opt.user, opt.pass)}
	server := model.Service.NewServer()
	defer server.Close()
	// Requests reach the handler only after the URL below is printed, so swapping it here is safe.
	server.Config.Handler = &wrapper{inner: server.Config.Handler, opt: opt, cookies: map[string]time.Time{}}

	if *snapshot != "" {
		for _, obj := range simulator.Map.All("VirtualMachine") {
			vm := obj.(*simulator.VirtualMachine)
			vm.Snapshot = &types.VirtualMachineSnapshotInfo{RootSnapshotList: []types.VirtualMachineSnapshotTree{{
				Snapshot: types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: vm.Self.Value + "-snapshot-1"},
				Vm:       vm.Self, Name: *snapshot, State: vm.Runtime.PowerState,
			}}}
			for _, device := range vm.Config.Hardware.Device {
				disk, ok := device.(*types.VirtualDisk)
				if !ok {
					continue
				}
				if backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					parent := *backing
					backing.Parent = &parent
					backing.FileName = strings.TrimSuffix(backing.FileName, ".vmdk") + "-000001.vmdk"
				}
			}
		}
	}

	var datastore, dsName string
	for _, obj := range simulator.Map.All("Datastore") {
		ds := obj.(*simulator.Datastore)
		datastore, dsName = ds.Info.GetDatastoreInfo().Url, ds.Name
	}
	sum := sha256.Sum256(server.Certificate().Raw)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	_ = esx.HostSystem // the ESX model's inventory: one host, ha-datacenter
	line, _ := json.Marshal(map[string]string{
		"url": "https://" + server.URL.Host, "datastore": datastore, "dsName": dsName,
		"fingerprint": strings.Join(pairs, ":"),
	})
	fmt.Println(string(line))
	_, _ = io.Copy(io.Discard, os.Stdin)
}
