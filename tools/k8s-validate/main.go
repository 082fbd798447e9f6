// Command k8s-validate checks a kustomize base strictly against Kubernetes' own API types.
//
// It reads <dir>/kustomization.yaml (only the fields the base uses are accepted), then decodes
// every document of every file it lists into the k8s.io/api type of its apiVersion and kind with
// sigs.k8s.io/yaml's strict decoding: an unknown field, a duplicate field or a value of the wrong
// type fails, as `kubectl apply --validate=strict` would. Files of the directory that the
// kustomization does not list fail too (they would silently not be deployed), as do two objects
// of one kind with one name. On success it prints the decoded objects, the kustomization's
// namespace and labels applied, as one JSON document on stdout, for further checks.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// kustomization holds the kustomize fields this checker understands; any other field fails.
type kustomization struct {
	APIVersion        string            `json:"apiVersion"`
	Kind              string            `json:"kind"`
	Namespace         string            `json:"namespace,omitempty"`
	Resources         []string          `json:"resources"`
	Labels            []labelSet        `json:"labels,omitempty"`
	CommonAnnotations map[string]string `json:"commonAnnotations,omitempty"`
}

type labelSet struct {
	Pairs            map[string]string `json:"pairs"`
	IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	IncludeTemplates bool              `json:"includeTemplates,omitempty"`
}

// types maps apiVersion/kind to a constructor of its API type.
var types = map[string]func() any{
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"v1/Namespace":                             func() any { return &corev1.Namespace{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":                 func() any { return &corev1.PersistentVolumeClaim{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
}

type object struct {
	File   string         `json:"file"`
	Kind   string         `json:"kind"`
	Name   string         `json:"name"`
	Object map[string]any `json:"object"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: k8s-validate <kustomize base directory>")
		os.Exit(2)
	}
	objects, err := validate(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "k8s-validate: %v\n", err)
		os.Exit(1)
	}
	out, err := json.Marshal(objects)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k8s-validate: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

func validate(dir string) ([]object, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("kustomization.yaml: not a kustomize.config.k8s.io/v1beta1 Kustomization")
	}
	if err := unlisted(dir, k.Resources); err != nil {
		return nil, err
	}
	var objects []object
	seen := map[string]string{}
	for _, file := range k.Resources {
		if filepath.IsAbs(file) || strings.Contains(file, "..") {
			return nil, fmt.Errorf("%s: resources must be files of the base", file)
		}
		content, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		for i, doc := range splitDocuments(content) {
			where := fmt.Sprintf("%s (document %d)", file, i+1)
			obj, err := decode(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			id := obj.Kind + "/" + obj.Name
			if prev, dup := seen[id]; dup {
				return nil, fmt.Errorf("%s: %s is also defined in %s", where, id, prev)
			}
			seen[id] = where
			obj.File = file
			apply(&k, obj.Object)
			objects = append(objects, obj)
		}
	}
	if len(objects) == 0 {
		return nil, fmt.Errorf("no objects")
	}
	return objects, nil
}

// unlisted fails on a manifest of the directory that the kustomization does not list.
func unlisted(dir string, resources []string) error {
	listed := map[string]bool{}
	for _, r := range resources {
		listed[filepath.Clean(r)] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var missing []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "kustomization.yaml" || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		if !listed[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("not listed in kustomization.yaml resources: %s", strings.Join(missing, ", "))
	}
	return nil
}

func splitDocuments(content []byte) [][]byte {
	var docs [][]byte
	for _, part := range bytes.Split(append([]byte("\n"), content...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(part))) > 0 {
			docs = append(docs, part)
		}
	}
	return docs
}

func stripComments(part []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(part, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// decode reads apiVersion and kind, then decodes the document strictly into its API type.
func decode(doc []byte) (object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return object{}, err
	}
	newType, ok := types[head.APIVersion+"/"+head.Kind]
	if !ok {
		return object{}, fmt.Errorf("unsupported apiVersion/kind %q/%q", head.APIVersion, head.Kind)
	}
	if head.Metadata.Name == "" {
		return object{}, fmt.Errorf("%s without metadata.name", head.Kind)
	}
	typed := newType()
	if err := yaml.UnmarshalStrict(doc, typed); err != nil {
		return object{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	// Back to plain JSON through the typed value: what Kubernetes would store.
	canonical, err := json.Marshal(typed)
	if err != nil {
		return object{}, err
	}
	var generic map[string]any
	if err := json.Unmarshal(canonical, &generic); err != nil {
		return object{}, err
	}
	return object{Kind: head.Kind, Name: head.Metadata.Name, Object: generic}, nil
}

// apply sets the kustomization's namespace and label pairs on an object's metadata, as
// `kustomize build` does (selectors and templates are left to kustomize itself).
func apply(k *kustomization, obj map[string]any) {
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		return
	}
	// Namespaces are cluster-scoped: kustomize leaves them out of its namespace.
	if k.Namespace != "" && obj["kind"] != "Namespace" {
		meta["namespace"] = k.Namespace
	}
	for _, set := range k.Labels {
		labels, _ := meta["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
			meta["labels"] = labels
		}
		for key, v := range set.Pairs {
			labels[key] = v
		}
	}
}
