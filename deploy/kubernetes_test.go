package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/regblock/regblock/internal/testenv"
)

// TestKubernetes builds each kustomization with kubectl kustomize, decodes
// every object strictly into its Kubernetes API type (an unknown or
// misspelled field fails), and checks that what the objects refer to
// exists: ConfigMaps, volumes, Service target ports, probe ports.
func TestKubernetes(t *testing.T) {
	kubectl := testenv.Need(t, "kubectl", "kubectl")
	for _, c := range []struct {
		dir                   string
		withSync, withMonitor bool
	}{{"kubernetes/base", true, false}, {"kubernetes/configmap", false, false}, {"kubernetes/monitored", true, true}, {"kubernetes/trusted", true, false}} {
		t.Run(c.dir, func(t *testing.T) {
			checkManifests(t, kustomize(t, kubectl, c.dir), c.withSync, c.withMonitor)
		})
	}
}

func kustomize(t *testing.T, kubectl, dir string) []byte {
	t.Helper()
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	return out
}

// workload is what the checks need of a Deployment or a StatefulSet.
type workload struct {
	name        string
	selector    map[string]string
	pod         corev1.PodTemplateSpec
	claims      []corev1.PersistentVolumeClaim
	serviceName string // a StatefulSet's governing Service
}

func checkManifests(t *testing.T, out []byte, withSync, withMonitor bool) {
	configMaps := map[string]bool{}
	var deployments []workload
	var services []corev1.Service
	var policies []networkingv1.NetworkPolicy
	kinds := map[string]int{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		kinds[meta.Kind]++
		var err error
		switch meta.Kind {
		case "Namespace":
			err = yaml.UnmarshalStrict(doc, &corev1.Namespace{})
		case "ConfigMap":
			var cm corev1.ConfigMap
			err = yaml.UnmarshalStrict(doc, &cm)
			configMaps[cm.Name] = true
		case "Deployment":
			var d appsv1.Deployment
			err = yaml.UnmarshalStrict(doc, &d)
			deployments = append(deployments, workload{d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template, nil, ""})
		case "StatefulSet":
			var d appsv1.StatefulSet
			err = yaml.UnmarshalStrict(doc, &d)
			deployments = append(deployments, workload{d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template, d.Spec.VolumeClaimTemplates, d.Spec.ServiceName})
		case "Service":
			var s corev1.Service
			err = yaml.UnmarshalStrict(doc, &s)
			services = append(services, s)
		case "PodDisruptionBudget":
			err = yaml.UnmarshalStrict(doc, &policyv1.PodDisruptionBudget{})
		case "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			err = yaml.UnmarshalStrict(doc, &np)
			policies = append(policies, np)
		case "PodMonitor":
			var pm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string
				Metadata   map[string]any
				Spec       struct {
					Selector            map[string]any
					PodMetricsEndpoints []struct{ Port, Interval string } `json:"podMetricsEndpoints"`
				}
			}
			err = yaml.UnmarshalStrict(doc, &pm)
			if pm.APIVersion != "monitoring.coreos.com/v1" || len(pm.Spec.PodMetricsEndpoints) == 0 {
				t.Errorf("PodMonitor: %+v", pm)
			}
		default:
			t.Errorf("unexpected object kind %q", meta.Kind)
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", meta.Kind, err, doc)
		}
	}
	for _, kind := range []string{"Namespace", "Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap", "NetworkPolicy"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s", kind)
		}
	}
	if (kinds["PodMonitor"] > 0) != withMonitor {
		t.Errorf("%d PodMonitors, want one: %v", kinds["PodMonitor"], withMonitor)
	}

	ports := map[string][]string{} // pod label → container port names
	for _, d := range deployments {
		spec := d.pod.Spec
		volumes := map[string]bool{}
		for _, c := range d.claims {
			volumes[c.Name] = true
		}
		for _, v := range spec.Volumes {
			volumes[v.Name] = true
			if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] {
				t.Errorf("%s: volume %s uses ConfigMap %s, which is not generated", d.name, v.Name, v.ConfigMap.Name)
			}
		}
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s may run as root", d.name)
		}
		var names []string
		hasSync := false
		for _, c := range spec.Containers {
			hasSync = hasSync || c.Name == "sync"
			if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem ||
				c.SecurityContext.Capabilities == nil || !slices.Contains(c.SecurityContext.Capabilities.Drop, "ALL") {
				t.Errorf("%s/%s is not locked down (read-only root, all capabilities dropped)", d.name, c.Name)
			}
			if !strings.HasPrefix(c.Image, "registry.isp.example/regblock:") {
				t.Errorf("%s/%s: image %q is not the regblock image", d.name, c.Name, c.Image)
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("%s/%s mounts %s, which is no volume", d.name, c.Name, m.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil && !configMaps[e.ConfigMapRef.Name] {
					t.Errorf("%s/%s: env from ConfigMap %s, which is not generated", d.name, c.Name, e.ConfigMapRef.Name)
				}
			}
			for _, p := range c.Ports {
				names = append(names, p.Name)
			}
		}
		if hasSync != withSync {
			t.Errorf("%s: sync sidecar present %v, want %v", d.name, hasSync, withSync)
		}
		ports[d.selector["app.kubernetes.io/name"]] = names
		if d.name == "regblockd" && !slices.ContainsFunc(d.claims, func(c corev1.PersistentVolumeClaim) bool { return c.Name == "state" }) {
			t.Errorf("regblockd's state is not on a persistent volume: a restarted pod would forget its high-water marks")
		}
	}
	for _, s := range services {
		for _, p := range s.Spec.Ports {
			if !slices.Contains(ports[s.Spec.Selector["app.kubernetes.io/name"]], p.TargetPort.StrVal) {
				t.Errorf("Service %s port %s targets %q, which its pods do not expose", s.Name, p.Name, p.TargetPort.StrVal)
			}
		}
	}
	for _, d := range deployments {
		app := d.selector["app.kubernetes.io/name"]
		// A node that fails must not take every replica with it.
		if !slices.ContainsFunc(d.pod.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
			return c.TopologyKey == "kubernetes.io/hostname" && c.LabelSelector != nil && c.LabelSelector.MatchLabels["app.kubernetes.io/name"] == app
		}) {
			t.Errorf("%s: no topology spread over nodes", d.name)
		}
		if d.serviceName != "" && !slices.ContainsFunc(services, func(s corev1.Service) bool {
			return s.Name == d.serviceName && s.Spec.ClusterIP == corev1.ClusterIPNone && s.Spec.Selector["app.kubernetes.io/name"] == app
		}) {
			t.Errorf("%s: serviceName %s is not a headless Service selecting its pods", d.name, d.serviceName)
		}
		// Every pod is under a NetworkPolicy whose named ports it has.
		selected := false
		for _, np := range policies {
			if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != app {
				continue
			}
			selected = true
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port != nil && p.Port.StrVal != "" && !slices.Contains(ports[app], p.Port.StrVal) {
						t.Errorf("NetworkPolicy %s lets in port %q, which %s does not expose", np.Name, p.Port.StrVal, d.name)
					}
				}
			}
		}
		if !selected {
			t.Errorf("%s: no NetworkPolicy selects its pods", d.name)
		}
		// Metrics on the pod's address, and a container port for each.
		for _, c := range d.pod.Spec.Containers {
			for i, a := range c.Args {
				if i == 0 || c.Args[i-1] != "-metrics" {
					continue
				}
				if !strings.HasPrefix(a, "$(POD_IP):") || !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
					return e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
				}) {
					t.Errorf("%s/%s: -metrics %s is not bound to the pod's address", d.name, c.Name, a)
				}
				if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
					return ":"+strconv.Itoa(int(p.ContainerPort)) == a[len("$(POD_IP)"):]
				}) {
					t.Errorf("%s/%s: -metrics %s has no container port", d.name, c.Name, a)
				}
			}
		}
	}
}

// TestKubernetesCorefile checks that the cluster Corefile serves on the
// port the Deployment exposes and the probes ask.
func TestKubernetesCorefile(t *testing.T) {
	corefile, err := os.ReadFile("kubernetes/base/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	resolver, _ := os.ReadFile("kubernetes/base/resolver.yaml")
	for _, pair := range [][2]string{{".:1053", "containerPort: 1053"}, {"ready {$POD_IP}:8181", "port: 8181"}, {"health {$POD_IP}:8080", "port: 8080"}, {"prometheus {$POD_IP}:9153", "containerPort: 9153"}} {
		if !strings.Contains(string(corefile), pair[0]) || !strings.Contains(string(resolver), pair[1]) {
			t.Errorf("Corefile %q and resolver.yaml %q do not agree", pair[0], pair[1])
		}
	}
}

// TestConfigMapListUpdateInPlace changes the list of the ConfigMap overlay
// as an ISP's CI would and builds it again: the ConfigMap keeps its name and
// no workload's pod template changes, so that Kubernetes updates the
// mounted files in place (regblockd reloads them) instead of rolling every
// pod.
func TestConfigMapListUpdateInPlace(t *testing.T) {
	kubectl := testenv.Need(t, "kubectl", "kubectl")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("kubernetes")); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "configmap")
	before := kustomize(t, kubectl, overlay)
	list := filepath.Join(overlay, "example.list")
	data, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(list, append(data, "added.example\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	after := kustomize(t, kubectl, overlay)
	if bytes.Equal(before, after) {
		t.Fatal("the new list did not change the manifests")
	}
	objects := func(out []byte) map[string]string {
		m := map[string]string{}
		for _, doc := range bytes.Split(out, []byte("\n---\n")) {
			var meta struct {
				Kind     string
				Metadata struct{ Name string }
			}
			yaml.Unmarshal(doc, &meta)
			m[meta.Kind+"/"+meta.Metadata.Name] = string(doc)
		}
		return m
	}
	b, a := objects(before), objects(after)
	if len(a) != len(b) || a["ConfigMap/regblock-lists"] == "" {
		t.Fatalf("objects before %d, after %d; the lists ConfigMap must keep its name regblock-lists", len(b), len(a))
	}
	for name, doc := range b {
		if name != "ConfigMap/regblock-lists" && a[name] != doc {
			t.Errorf("%s changed with the list: pods would be rolled", name)
		}
	}
}
