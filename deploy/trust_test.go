package deploy

import (
	"bufio"
	"bytes"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// The binaries the end-to-end deploy tests run, built once into binDir,
// which TestMain removes.
var (
	buildOnce              sync.Once
	binDir                 string
	regblockBin, daemonBin string
	buildErr               error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func binaries(t *testing.T) (regblock, regblockd string) {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "regblock-deploy-test"); buildErr != nil {
			return
		}
		if regblockBin, buildErr = testenv.Build(binDir, "../cmd/regblock", "regblock"); buildErr == nil {
			daemonBin, buildErr = testenv.Build(binDir, "../cmd/regblockd", "regblockd")
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return regblockBin, daemonBin
}

// host is a file system root standing in for a host's /: the shipped
// paths are moved under it, and the shipped binaries' paths to bin.
type host struct {
	root, bin string
}

func (h host) path(p string) string {
	for _, prefix := range []string{"/etc/regblock", "/var/lib/regblock", "/var/log/regblock", "/var/lib/prometheus/node-exporter"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return filepath.Join(h.root, p)
		}
	}
	return p
}

// rewrite moves every shipped path in text under the host's root.
func (h host) rewrite(text string) string {
	text = strings.ReplaceAll(text, "/usr/local/bin/", h.bin+"/")
	for _, prefix := range []string{"/etc/regblock", "/var/lib/regblock", "/var/log/regblock", "/var/lib/prometheus/node-exporter"} {
		text = strings.ReplaceAll(text, prefix, filepath.Join(h.root, prefix))
	}
	return text
}

// argv moves the shipped paths of a command under the host's root.
func (h host) argv(args []string) []string {
	for i := range args {
		args[i] = h.rewrite(args[i])
	}
	return args
}

// pemCert is the test server's certificate, PEM-encoded.
func pemCert(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// envFile reads KEY=VALUE lines, as systemd's EnvironmentFile= does for
// the files shipped here (no quoting).
func envFile(t *testing.T, path string, env map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		env[k] = v
	}
}

// execStart returns the command a unit runs, as systemd would: the
// ExecStart= lines of the unit then of its drop-ins, an empty one
// resetting the list, ${VAR} expanded from env, split on white space.
func execStart(t *testing.T, env map[string]string, unit string, dropins ...string) []string {
	t.Helper()
	var cmd string
	for _, file := range append([]string{unit}, dropins...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
				cmd = v
			}
		}
	}
	if cmd == "" {
		t.Fatalf("%s: no ExecStart", unit)
	}
	return strings.Fields(os.Expand(cmd, func(k string) string {
		v, ok := env[k]
		if !ok {
			t.Fatalf("%s: ${%s} is in no environment file", unit, k)
		}
		return v
	}))
}

// trustPublisher is a regulator's web server: a policy history under
// /trust/ (root keys a, b, c, then b, c, d) and a list under /lists/,
// signed by the key the policy binds it to, over HTTPS.
type trustPublisher struct {
	srv               *httptest.Server
	certFile          string
	roots             []*blocklisttest.Key // a, b, c: the keys a host pins
	listKey           *blocklisttest.Key
	listText, blocked string
}

const trustIssuer = "Example Communications Commission"

func newTrustPublisher(t *testing.T) *trustPublisher {
	t.Helper()
	a, b, c, d := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	p := &trustPublisher{roots: []*blocklisttest.Key{a, b, c}, listKey: blocklisttest.NewKey(t), blocked: "abuse.example"}
	files := map[string][]byte{}
	policy := func(serial int, roots []*blocklisttest.Key, signers ...*blocklisttest.Key) {
		var keys []string
		for _, k := range roots {
			keys = append(keys, k.Public.String())
		}
		text := fmt.Sprintf("#! regblock-trust 1\n#! serial: %d\n#! issued: 2026-12-01T00:00:00Z\nroot 2 %s\nlist example-csam 1 %s %q\n",
			serial, strings.Join(keys, " "), p.listKey.Public.String(), trustIssuer)
		var sig []byte
		for _, k := range signers {
			sig = append(sig, k.Sign([]byte(text))...)
		}
		name := fmt.Sprintf("trust/%d.trust", serial)
		files[name], files[name+".minisig"] = []byte(text), sig
	}
	policy(1, []*blocklisttest.Key{a, b, c}, a, b)
	policy(2, []*blocklisttest.Key{b, c, d}, b, c) // root a rotated out
	p.listText = "#! regblock-list 1\n#! name: example-csam\n#! serial: 2026120401\n#! issued: 2026-12-01T00:00:00Z\n" +
		"#! issuer: " + trustIssuer + "\n#! authority: Example Communications Act 1998, section 263(2)\n" +
		p.blocked + " ORDER-2026-0012 csam\n"
	files["lists/example-csam.list"] = []byte(p.listText)
	files["lists/example-csam.list.minisig"] = p.listKey.Sign([]byte(p.listText))
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(p.srv.Close)
	// regblock sync trusts the server's certificate through SSL_CERT_FILE,
	// as it would a private CA's.
	p.certFile = filepath.Join(t.TempDir(), "publisher.pem")
	if err := os.WriteFile(p.certFile, pemCert(p.srv), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs argv, a shipped unit's or container's command, to its end.
func (p *trustPublisher) run(t *testing.T, what string, argv []string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+p.certFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s\n%s", what, err, strings.Join(argv, " "), out)
	}
}

// checkServes starts regblockd with corefile (its listen address, health,
// ready and metrics ports made free loopback ones, its upstream unused)
// and the notice server with argv (its ports likewise), and checks the
// listed name on the wire (the notice address, the EDE naming the issuer
// the policy grants) and on the notice page (451, the issuer).
func (p *trustPublisher) checkServes(t *testing.T, regblockd, corefile string, notice []string) {
	t.Helper()
	free := func() string { return "127.0.0.1:" + testenv.FreePort(t) }
	dnsPort := testenv.FreePort(t)
	dnsAddr := "127.0.0.1:" + dnsPort
	corefile = strings.ReplaceAll(corefile, "{$POD_IP}", "127.0.0.1")
	for _, old := range []string{"127.0.0.1:8080", ":8080", "127.0.0.1:8181", ":8181", ":9153", "127.0.0.1:9153"} {
		corefile = strings.Replace(corefile, " "+old, " "+free(), 1)
	}
	for _, zone := range []string{"\n. {", "\n.:1053 {"} {
		corefile = strings.Replace(corefile, zone, "\n.:"+dnsPort+" {", 1)
	}
	corefile = strings.Replace(corefile, "regblock {", "bind 127.0.0.1\n    regblock {", 1)
	testenv.Regblockd(t, regblockd, corefile, t.TempDir(), dnsAddr, p.blocked+".")
	m := new(dns.Msg).SetQuestion(p.blocked+".", dns.TypeA)
	m.SetEdns0(1232, false)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
		t.Errorf("%s: %v; want the notice address 192.0.2.80", p.blocked, r.Answer)
	}
	if ede := edeText(r); !strings.Contains(ede, trustIssuer) {
		t.Errorf("EDE %q does not name the issuer the policy grants", ede)
	}

	listen, metrics := free(), free()
	for i := range notice {
		switch {
		case i > 0 && notice[i-1] == "-listen":
			notice[i] = listen
		case i > 0 && notice[i-1] == "-metrics":
			notice[i] = metrics
		}
	}
	testenv.Process(t, "regblock notice", exec.Command(notice[0], notice[1:]...))
	testenv.Eventually(t, 20*time.Second, "the notice server is ready", func() bool {
		resp, err := http.Get("http://" + metrics + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	req, _ := http.NewRequest("GET", "http://"+listen+"/", nil)
	req.Host = p.blocked
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&body)
	if resp.StatusCode != http.StatusUnavailableForLegalReasons || !strings.Contains(body.String(), trustIssuer) {
		t.Errorf("notice page for %s: HTTP %d, issuer shown %v", p.blocked, resp.StatusCode, strings.Contains(body.String(), trustIssuer))
	}
}

func edeText(r *dns.Msg) string {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.ExtraText
			}
		}
	}
	return ""
}

// TestSystemdTrust deploys the units of systemd/ with the drop-ins of
// systemd/trust/ as deploy/README.md says, on a host whose paths live in a
// temporary directory: it runs regblock-trust-sync's and regblock-sync's
// commands (in the order the drop-in gives) against a regulator whose
// policy history rotated a root key out, then regblockd on the trust
// Corefile and the notice server: the list signed under the newest policy
// is enforced on the wire and shown on the notice page, under the issuer
// the policy grants, from root keys pinned before the rotation.
func TestSystemdTrust(t *testing.T) {
	regblock, regblockd := binaries(t)
	p := newTrustPublisher(t)
	h := host{root: t.TempDir(), bin: filepath.Dir(regblock)}
	for _, dir := range []string{"/etc/regblock", "/var/lib/regblock/trust", "/var/lib/regblock/lists", "/var/lib/regblock/state", "/var/log/regblock", "/var/lib/prometheus/node-exporter"} {
		os.MkdirAll(h.path(dir), 0o755)
	}
	for i, name := range []string{"root-a", "root-b", "root-c"} {
		data, _ := os.ReadFile(p.roots[i].WritePublic(t, t.TempDir()))
		os.WriteFile(h.path("/etc/regblock/"+name+".pub"), data, 0o644)
	}
	env := map[string]string{}
	envFile(t, "systemd/sync.env", env)
	envFile(t, "systemd/trust/trust.env", env)
	env["REGBLOCK_URL"], env["REGBLOCK_TRUST_URL"] = p.srv.URL+"/lists/", p.srv.URL+"/trust/"

	p.run(t, "regblock-trust-sync", h.argv(execStart(t, env, "systemd/trust/regblock-trust-sync.service")))
	for _, v := range []string{"1.trust", "2.trust"} {
		if _, err := os.Stat(h.path("/var/lib/regblock/trust/" + v)); err != nil {
			t.Errorf("regblock-trust-sync did not mirror %s: %v", v, err)
		}
	}
	p.run(t, "regblock-sync", h.argv(execStart(t, env, "systemd/regblock-sync.service", "systemd/trust/regblock-sync.service.d/trust.conf")))
	if data, _ := os.ReadFile(h.path("/var/lib/regblock/lists/example-csam.list")); string(data) != p.listText {
		t.Fatalf("regblock-sync did not write the list")
	}
	if _, err := os.Stat(h.path("/var/lib/prometheus/node-exporter/regblock-trust-sync.prom")); err != nil {
		t.Errorf("regblock-trust-sync wrote no textfile for node_exporter: %v", err)
	}

	corefile, err := os.ReadFile("systemd/trust/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	notice := h.argv(execStart(t, env, "systemd/regblock-notice.service", "systemd/trust/regblock-notice.service.d/trust.conf"))
	p.checkServes(t, regblockd, h.rewrite(string(corefile)), notice)
}

// TestKubernetesTrust builds deploy/kubernetes/trusted and runs what its
// pods would run, on a host whose paths live in a temporary directory: the
// ConfigMaps' files and literals as the pods see them, the resolver pod's
// trust-sync and sync sidecars (trust-sync first: a sync that starts
// before any policy is there fails its runs until one is), regblockd on
// the generated Corefile, and the notice pod's server. The list signed
// under the newest policy is enforced and shown under the issuer the policy
// grants, from root keys pinned before the rotation.
func TestKubernetesTrust(t *testing.T) {
	kubectl := testenv.Need(t, "kubectl", "kubectl")
	regblock, regblockd := binaries(t)
	p := newTrustPublisher(t)
	h := host{root: t.TempDir(), bin: filepath.Dir(regblock)}
	for _, dir := range []string{"/etc/regblock", "/var/lib/regblock/trust", "/var/lib/regblock/lists", "/var/lib/regblock/state", "/var/log/regblock"} {
		os.MkdirAll(h.path(dir), 0o755)
	}

	configMaps := map[string]map[string]string{}
	pods := map[string]corev1.PodSpec{}
	for _, doc := range bytes.Split(kustomize(t, kubectl, "kubernetes/trusted"), []byte("\n---\n")) {
		var meta struct{ Kind string }
		yaml.Unmarshal(doc, &meta)
		switch meta.Kind {
		case "ConfigMap":
			var cm corev1.ConfigMap
			yaml.Unmarshal(doc, &cm)
			for _, name := range []string{"regblock-config", "regblock-sync"} {
				if strings.HasPrefix(cm.Name, name+"-") { // kustomize's content hash
					configMaps[name] = cm.Data
				}
			}
		case "StatefulSet":
			var s appsv1.StatefulSet
			yaml.Unmarshal(doc, &s)
			pods[s.Name] = s.Spec.Template.Spec
		case "Deployment":
			var d appsv1.Deployment
			yaml.Unmarshal(doc, &d)
			pods[d.Name] = d.Spec.Template.Spec
		}
	}
	for name, data := range configMaps["regblock-config"] {
		os.WriteFile(h.path("/etc/regblock/"+name), []byte(data), 0o644)
	}
	for i, name := range []string{"root-a", "root-b", "root-c"} {
		if _, ok := configMaps["regblock-config"][name+".pub"]; !ok {
			t.Fatalf("the regblock-config ConfigMap has no %s.pub", name)
		}
		data, _ := os.ReadFile(p.roots[i].WritePublic(t, t.TempDir()))
		os.WriteFile(h.path("/etc/regblock/"+name+".pub"), data, 0o644)
	}
	env := configMaps["regblock-sync"]
	env["REGBLOCK_URL"], env["REGBLOCK_TRUST_URL"] = p.srv.URL+"/lists/", p.srv.URL+"/trust/"
	env["POD_IP"] = "127.0.0.1" // the downward API's status.podIP

	// argv is a container's command as the kubelet runs it: $(VAR) from
	// its environment, the image's entrypoint when it has no command.
	argv := func(pod, container string) []string {
		for _, c := range pods[pod].Containers {
			if c.Name != container {
				continue
			}
			args := append(append([]string{}, c.Command...), c.Args...)
			if len(c.Command) == 0 {
				args = append([]string{"/usr/local/bin/regblockd"}, args...)
			}
			for i, a := range args {
				args[i] = os.Expand(strings.NewReplacer("$(", "${", ")", "}").Replace(a), func(k string) string { return env[k] })
				if i > 0 && args[i-1] == "-metrics" {
					args[i] = "127.0.0.1:" + testenv.FreePort(t)
				}
			}
			return h.argv(args)
		}
		t.Fatalf("pod %s has no container %s", pod, container)
		return nil
	}
	sidecar := func(what string, args []string) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+p.certFile)
		testenv.Process(t, what, cmd)
	}
	sidecar("trust-sync", argv("regblockd", "trust-sync"))
	testenv.Eventually(t, 20*time.Second, "trust-sync mirrors 1.trust and 2.trust", func() bool {
		_, err := os.Stat(h.path("/var/lib/regblock/trust/2.trust"))
		return err == nil
	})
	sidecar("sync", argv("regblockd", "sync"))
	testenv.Eventually(t, 20*time.Second, "the sync sidecar writes the list", func() bool {
		data, _ := os.ReadFile(h.path("/var/lib/regblock/lists/example-csam.list"))
		return string(data) == p.listText
	})
	if got := argv("regblockd", "regblockd"); !slices.Equal(got[1:], []string{"-conf", h.path("/etc/regblock/Corefile")}) {
		t.Fatalf("regblockd runs %v, not on the ConfigMap's Corefile", got)
	}
	corefile, _ := os.ReadFile(h.path("/etc/regblock/Corefile"))
	p.checkServes(t, regblockd, h.rewrite(string(corefile)), argv("regblock-notice", "notice"))
}
