package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// reportHost is a receiver's host, its paths under a temporary root: the
// regulator's published list, issued last month, and one resolver's
// receipts of last month, with 25 queries blocked.
func reportHost(t *testing.T) (h host, month string) {
	regblock, _ := binaries(t)
	h = host{root: t.TempDir(), bin: filepath.Dir(regblock)}
	now := time.Now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	month = first.Format("2006-01")
	for _, dir := range []string{"/var/lib/regblock/receipts", "/var/lib/regblock/published", "/var/lib/regblock/reports"} {
		os.MkdirAll(h.path(dir), 0o755)
	}
	issued := first.Add(36 * time.Hour)
	list := strings.Replace(fleetList, "2026-12-01T00:00:00Z", issued.Format(time.RFC3339), 1)
	key := blocklisttest.NewKey(t)
	path := key.WriteList(t, h.path("/var/lib/regblock/published"), "example-csam.list", list)
	sum, _ := exec.Command("sha256sum", path).Output()
	sha := strings.Fields(string(sum))[0]
	var lines []byte
	for i, blocked := range []uint64{5, 30} {
		at := issued.Add(time.Duration(i+1) * 10 * time.Minute)
		body, _ := json.Marshal(receipt.Receipt{Resolver: "r1", Time: at, Started: issued,
			Lists: []receipt.List{{Name: "example-csam", Serial: 2026120401, SHA256: sha, Applied: at, Blocked: blocked}}})
		line, _ := json.Marshal(receipts.Record{Received: at, Key: "00000000000000AA", Result: "accepted", Body: body, Signature: "-"})
		lines = append(append(lines, line...), '\n')
	}
	os.WriteFile(h.path("/var/lib/regblock/receipts/r1.jsonl"), lines, 0o640)
	return h, month
}

// checkReport checks the report the month's run left in reports/MONTH.
func checkReport(t *testing.T, h host, month string) {
	t.Helper()
	dir := h.path("/var/lib/regblock/reports/" + month)
	for _, f := range []string{"report.en.html", "report.ms.html", "csv/blocked.csv"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("no %s: %v", f, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		From  time.Time
		Lists []struct {
			Versions []struct{ Resolvers int }
			Days     []struct{ Queries any } `json:"blocked_per_day"`
		}
	}
	json.Unmarshal(data, &r)
	if r.From.Format("2006-01") != month || len(r.Lists) != 1 || len(r.Lists[0].Versions) != 1 || r.Lists[0].Versions[0].Resolvers != 1 || r.Lists[0].Days[1].Queries != float64(30) {
		t.Errorf("the report of %s:\n%s", month, data)
	}
}

// TestSystemdReport runs regblock-report.service's command on a host
// whose paths live in a temporary directory: last month's report, in both
// languages, from the receipts and the published list. The timer starts
// it on the first of the month.
func TestSystemdReport(t *testing.T) {
	h, month := reportHost(t)
	argv := h.argv(execStart(t, nil, "systemd/regblock-report.service"))
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	checkReport(t, h, month)
	timer, _ := os.ReadFile("systemd/regblock-report.timer")
	if !bytes.Contains(timer, []byte("OnCalendar=*-*-01 02:00:00 UTC")) || !bytes.Contains(timer, []byte("Persistent=true")) {
		t.Errorf("regblock-report.timer does not run on the first of the month, or misses a run while the host is off:\n%s", timer)
	}
}

// TestKubernetesReport builds deploy/kubernetes/report and runs its
// CronJob's command as its pod would see its volumes: monthly, read-only
// inputs, the report in the reports claim.
func TestKubernetesReport(t *testing.T) {
	kubectl := testenv.Need(t, "kubectl", "kubectl")
	var job *batchv1.CronJob
	for _, doc := range bytes.Split(kustomize(t, kubectl, "kubernetes/report"), []byte("\n---\n")) {
		var c batchv1.CronJob
		if err := yaml.Unmarshal(doc, &c); err != nil {
			t.Fatal(err)
		}
		if c.Kind == "CronJob" {
			job = &c
		}
	}
	if job == nil {
		t.Fatal("kubernetes/report has no CronJob")
	}
	if job.Spec.Schedule != "0 2 1 * *" || job.Spec.TimeZone == nil || *job.Spec.TimeZone != "Etc/UTC" {
		t.Errorf("the CronJob runs at %q (%v), want the first of the month, UTC", job.Spec.Schedule, job.Spec.TimeZone)
	}
	pod := job.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the report container's root is writable, or it may escalate")
	}
	for _, m := range c.VolumeMounts {
		if wantRO := !strings.HasSuffix(m.MountPath, "/reports"); m.ReadOnly != wantRO {
			t.Errorf("volume %s at %s: read-only %v, want %v", m.Name, m.MountPath, m.ReadOnly, wantRO)
		}
	}
	if !slices.Contains(c.Command, "previous") {
		t.Errorf("the CronJob's command %v does not build the month before", c.Command)
	}
	h, month := reportHost(t)
	argv := h.argv(slices.Clone(c.Command))
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	checkReport(t, h, month)
}
