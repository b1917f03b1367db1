package nattest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The topology, in documentation ranges only (docs/nat.md draws it):
//
//	"internet" 203.0.113.0/24: a bridge in namespace <p>-inet
//	  ├── <p>-pub   203.0.113.10          the public bootstrap node
//	  ├── <p>-nata  203.0.113.20 | 192.0.2.1      NAT A (MASQUERADE)
//	  │     └── <p>-a     192.0.2.2       private node A
//	  └── <p>-natb  203.0.113.30 | 198.51.100.1   NAT B (MASQUERADE)
//	        └── <p>-b     198.51.100.2    private node B
//
// The binary under test is built with the synapse_docnet tag, so
// 203.0.113.0/24 counts as public and the two LANs stay unroutable, like
// RFC 1918 home networks (p2p/docnet.go).
const (
	pubIP   = "203.0.113.10"
	natAWAN = "203.0.113.20"
	natBWAN = "203.0.113.30"
	natALAN = "192.0.2.1"
	aIP     = "192.0.2.2"
	natBLAN = "198.51.100.1"
	bIP     = "198.51.100.2"
)

// natKind is how the NAT boxes map ports.
type natKind int

const (
	// natCone is MASQUERADE as Linux does it by default: it keeps the
	// source port when it can and maps one internal address:port to the
	// same external one whatever the destination, so a hole punch works.
	natCone natKind = iota
	// natSymmetric is MASQUERADE --random-fully: every connection gets a
	// new random external port, so the port a peer learnt from the relay
	// is not the one the punch comes from, and hole punching fails.
	natSymmetric
)

// topology is one set of namespaces. Names are synat<pid>-<random>-<role>:
// parallel runs on one machine do not collide, and a run that was killed
// before its cleanup leaves namespaces the next run can recognise as
// abandoned (sweepAbandoned).
type topology struct {
	t                           *testing.T
	inet, pub, natA, natB, a, b string
	all                         []string
}

// requireNamespaces skips the test unless it may create network
// namespaces (root, iproute2) and has iptables. With SYNAPSE_NAT_TEST=require
// (.ci/run sets it after installing the tools) every reason to skip fails
// the test instead, so CI cannot pass by skipping.
func requireNamespaces(t *testing.T) {
	t.Helper()
	var s skipper = t
	if os.Getenv("SYNAPSE_NAT_TEST") == "require" && !testing.Short() {
		s = &requireT{t}
	}
	requireNamespacesOn(s)
}

// skipper is the part of *testing.T requireNamespacesOn uses.
type skipper interface {
	Helper()
	Skip(...any)
	Skipf(string, ...any)
	Fatal(...any)
}

// requireT turns skips into failures.
type requireT struct{ *testing.T }

func (r *requireT) Skip(args ...any) {
	r.T.Helper()
	r.T.Fatal(append([]any{"SYNAPSE_NAT_TEST=require: "}, args...)...)
}
func (r *requireT) Skipf(f string, args ...any) {
	r.T.Helper()
	r.T.Fatalf("SYNAPSE_NAT_TEST=require: "+f, args...)
}

func requireNamespacesOn(t skipper) {
	t.Helper()
	if testing.Short() {
		t.Skip("NAT tests start real daemons in network namespaces; not in -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("NAT tests need root to create network namespaces (run as root, as .ci/run does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("NAT tests need the ip command (iproute2) to create network namespaces")
	}
	probe := "synprobe-" + randHex(3)
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here (%v: %s); NAT tests skipped", err, strings.TrimSpace(string(out)))
	}
	exec.Command("ip", "netns", "del", probe).Run()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("NAT tests need iptables (Debian: apt-get install iptables; .ci/run installs it)")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sh runs a command and fails the test with its output when it fails.
func sh(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newTopology builds the namespaces, links, addresses, routes and NAT
// rules; everything is deleted when the test ends, failed or not.
func newTopology(t *testing.T, kind natKind) *topology {
	t.Helper()
	sweepAbandoned(t)
	p := fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), randHex(2))
	tp := &topology{t: t, inet: p + "-inet", pub: p + "-pub", natA: p + "-nata", natB: p + "-natb", a: p + "-a", b: p + "-b"}
	tp.all = []string{tp.inet, tp.pub, tp.natA, tp.natB, tp.a, tp.b}
	t.Cleanup(func() {
		for _, ns := range tp.all {
			// Deleting a namespace deletes its veth ends and rules.
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range tp.all {
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", tp.inet, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", tp.inet, "link", "set", "br0", "up")
	// wire connects ns's interface dev to the internet bridge.
	wire := func(ns, dev, bridgePort, addr string) {
		sh(t, "ip", "link", "add", bridgePort, "netns", tp.inet, "type", "veth", "peer", "name", dev, "netns", ns)
		sh(t, "ip", "-n", tp.inet, "link", "set", bridgePort, "master", "br0", "up")
		sh(t, "ip", "-n", ns, "addr", "add", addr+"/24", "dev", dev)
		sh(t, "ip", "-n", ns, "link", "set", dev, "up")
	}
	wire(tp.pub, "eth0", "v-pub", pubIP)
	// lan connects a private node to its NAT box.
	lan := func(nat, natLAN, node, nodeIP string) {
		sh(t, "ip", "link", "add", "lan", "netns", nat, "type", "veth", "peer", "name", "eth0", "netns", node)
		sh(t, "ip", "-n", nat, "addr", "add", natLAN+"/24", "dev", "lan")
		sh(t, "ip", "-n", nat, "link", "set", "lan", "up")
		sh(t, "ip", "-n", node, "addr", "add", nodeIP+"/24", "dev", "eth0")
		sh(t, "ip", "-n", node, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", node, "route", "add", "default", "via", natLAN)
	}
	for _, n := range []struct{ nat, wan, port, natLAN, node, nodeIP string }{
		{tp.natA, natAWAN, "v-nata", natALAN, tp.a, aIP},
		{tp.natB, natBWAN, "v-natb", natBLAN, tp.b, bIP},
	} {
		wire(n.nat, "wan", n.port, n.wan)
		lan(n.nat, n.natLAN, n.node, n.nodeIP)
		tp.natRules(n.nat, kind)
	}
	return tp
}

const nsPrefix = "synat"

// sweepAbandoned deletes namespaces left by test processes that no longer
// run (killed by a timeout before their cleanup); their daemons died with
// them (Pdeathsig).
func sweepAbandoned(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		pid, _, ok := strings.Cut(strings.TrimPrefix(f[0], nsPrefix), "-")
		if !ok {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its test is still running
		}
		t.Logf("deleting namespace %s left by a test that was killed", f[0])
		exec.Command("ip", "netns", "del", f[0]).Run()
	}
}

// natRules makes ns a NAT router: forwarding on, the LAN masqueraded
// behind the WAN address, and from the WAN only replies get in.
func (tp *topology) natRules(ns string, kind natKind) {
	t := tp.t
	sh(t, "ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	masq := []string{"ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}
	if kind == natSymmetric {
		masq = append(masq, "--random-fully")
	}
	sh(t, masq...)
	ipt := func(args ...string) { sh(t, append([]string{"ip", "netns", "exec", ns, "iptables"}, args...)...) }
	ipt("-P", "FORWARD", "DROP")
	// Counting rules (no target) first: bytes reaching the LAN from each
	// other host of the internet, read by forwardedFrom.
	for _, src := range []string{pubIP, natAWAN, natBWAN} {
		ipt("-A", "FORWARD", "-i", "wan", "-o", "lan", "-s", src)
	}
	ipt("-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT")
	ipt("-A", "FORWARD", "-i", "wan", "-o", "lan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	// Like a home router, the box itself drops what nobody asked for from
	// the WAN. This matters for hole punching: Linux only commits a
	// conntrack entry when a packet is accepted, so a peer's punch that
	// arrives before our own outgoing packet leaves no entry behind that
	// would make MASQUERADE pick another port for our packet.
	ipt("-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	ipt("-A", "INPUT", "-i", "wan", "-j", "DROP")
}

// forwardPort makes NAT box ns forward TCP and UDP port 4001 of its WAN
// address to lanIP:4001, like a port forward on a home router.
func (tp *topology) forwardPort(ns, lanIP string) {
	for _, proto := range []string{"tcp", "udp"} {
		sh(tp.t, "ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "PREROUTING", "-i", "wan", "-p", proto, "--dport", "4001",
			"-j", "DNAT", "--to-destination", lanIP+":4001")
		sh(tp.t, "ip", "netns", "exec", ns, "iptables", "-A", "FORWARD", "-i", "wan", "-o", "lan", "-p", proto, "-d", lanIP, "--dport", "4001", "-j", "ACCEPT")
	}
}

// forwardedFrom is how many bytes NAT box ns let from src into its LAN.
func (tp *topology) forwardedFrom(ns, src string) int64 {
	out := sh(tp.t, "ip", "netns", "exec", ns, "iptables", "-t", "filter", "-L", "FORWARD", "-n", "-v", "-x")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// pkts bytes target? prot opt in out source destination
		if len(f) >= 8 && f[len(f)-2] == src && f[len(f)-4] == "wan" && f[len(f)-3] == "lan" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	tp.t.Fatalf("no counting rule for %s in %s:\n%s", src, ns, out)
	return 0
}

// nsDialer dials from inside namespace ns: the socket is made by a thread
// that entered the namespace and never leaves it (its goroutine keeps it
// locked, so the runtime retires the thread when the goroutine ends).
func nsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			f, err := os.Open("/var/run/netns/" + ns)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}
