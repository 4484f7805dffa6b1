package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// describe parses data, a list or a trust policy read from path, and says
// what it is, for sign and lint: the list (nil for a policy), its serial,
// and a phrase.
func describe(path string, data []byte) (*blocklist.List, uint64, string, error) {
	if trust.IsPolicy(data) {
		p, err := trust.Parse(path, data)
		if err != nil {
			return nil, 0, "", err
		}
		return nil, p.Serial, fmt.Sprintf("trust policy serial %d (root %d of %d keys, %d list lines)", p.Serial, p.Root.Threshold, len(p.Root.Keys), len(p.Lists)), nil
	}
	if blocklist.IsDeltaData(data) {
		return describeDelta(path, data)
	}
	l, err := blocklist.Parse(path, data)
	if err != nil {
		return nil, 0, "", err
	}
	return l, l.Serial, fmt.Sprintf("list %q serial %d (%d blocking entries)", l.Name, l.Serial, l.Blocking()), nil
}

// issuedAhead refuses a list issued more than admit.MaxClockSkew after
// now, which every resolver (and sync, and the notice server) would refuse:
// better said before it is signed and published. The error names the
// header's line.
func issuedAhead(l *blocklist.List, data []byte, now time.Time) error {
	if !l.Issued.After(now.Add(admit.MaxClockSkew)) {
		return nil
	}
	line := 1
	for i, text := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(text), "#! issued:") {
			line = i + 1
			break
		}
	}
	fix := "sign -bump sets it to now"
	if blocklist.IsDeltaData(data) {
		fix = "a delta takes the new version's header: bump the list, then make the delta again"
	}
	return blocklist.ErrorList{{File: l.File, Line: line, Msg: fmt.Sprintf("issued %s is %v after this machine's clock: resolvers refuse a version issued more than %v ahead (%s)",
		l.Issued.Format(time.RFC3339), l.Issued.Sub(now).Round(time.Second), admit.MaxClockSkew, fix)}}
}

// newJudge returns how a command that takes -trust judges lists: by the
// policy at trustPath, signed as a resolver that pins keys would first
// accept it. Without -trust, by the trusted keys themselves.
func newJudge(trustPath string, keys []minisign.PublicKey, stderr io.Writer) (admit.Judge, error) {
	if trustPath == "" {
		return admit.ByKeys(keys), nil
	}
	p, _, err := trust.Walk(trustPath, nil, keys)
	switch {
	case p == nil:
		return admit.Judge{}, err
	case err != nil:
		// As the resolver: a version refused stops the walk, and the
		// versions before it stand.
		fmt.Fprintf(stderr, "regblock: warning: %v; judging by trust policy serial %d, the last version accepted before it\n", err, p.Serial)
	}
	return admit.ByPolicy(p), nil
}

// load reads, verifies and judges the list at path, keeping its entries.
func load(j admit.Judge, path string, maxSize int64) (*blocklist.List, error) {
	v, err := admit.Open(path, maxSize, j, nil)
	if err != nil {
		return nil, err
	}
	return v.List, nil
}

// satisfied says which line of the policy a list met, and with which keys.
func satisfied(j admit.Judge, l *blocklist.List) string {
	ids := make([]string, len(l.Signers))
	for i, k := range l.Signers {
		ids[i] = fmt.Sprintf("%X", k.ID())
	}
	p := j.Policy()
	if p == nil {
		return "by key " + strings.Join(ids, ", ")
	}
	r := p.RuleFor(l.Name)
	var on []string
	for _, k := range r.Keys {
		if slices.ContainsFunc(l.Signers, func(s minisign.PublicKey) bool { return minisig.SameKey(s, k) }) {
			on = append(on, fmt.Sprintf("%X", k.ID()))
		}
	}
	return fmt.Sprintf("by key %s: %d of %d needed by line %d (list %s) of trust policy serial %d",
		strings.Join(on, ", "), len(on), r.Threshold, r.Line, r.Pattern, p.Serial)
}
