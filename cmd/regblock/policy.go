package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/listset"
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
	l, err := blocklist.Parse(path, data)
	if err != nil {
		return nil, 0, "", err
	}
	return l, l.Serial, fmt.Sprintf("list %q serial %d (%d blocking entries)", l.Name, l.Serial, l.Blocking()), nil
}

// issuedAhead refuses a list issued more than listset.MaxClockSkew after
// now, which every resolver (and sync, and the notice server) would refuse:
// better said before it is signed and published. The error names the
// header's line.
func issuedAhead(l *blocklist.List, data []byte, now time.Time) error {
	if !l.Issued.After(now.Add(listset.MaxClockSkew)) {
		return nil
	}
	line := 1
	for i, text := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(text), "#! issued:") {
			line = i + 1
			break
		}
	}
	return blocklist.ErrorList{{File: l.File, Line: line, Msg: fmt.Sprintf("issued %s is %v after this machine's clock: resolvers refuse a version issued more than %v ahead (sign -bump sets it to now)",
		l.Issued.Format(time.RFC3339), l.Issued.Sub(now).Round(time.Second), listset.MaxClockSkew)}}
}

// judge is how a command that takes -trust judges lists: the policy at
// trustPath, signed as a resolver that pins keys would first accept it,
// gives the keys to verify a list with and the rule it must meet. Without
// -trust, keys are the trusted keys themselves.
type judge struct {
	keys   []minisign.PublicKey
	policy *trust.Policy
}

func newJudge(trustPath string, keys []minisign.PublicKey, stderr io.Writer) (judge, error) {
	if trustPath == "" {
		return judge{keys: keys}, nil
	}
	p, _, err := trust.Walk(trustPath, nil, keys)
	switch {
	case p == nil:
		return judge{}, err
	case err != nil:
		// As the resolver: a version refused stops the walk, and the
		// versions before it stand.
		fmt.Fprintf(stderr, "regblock: warning: %v; judging by trust policy serial %d, the last version accepted before it\n", err, p.Serial)
	}
	return judge{keys: p.ListKeys(), policy: p}, nil
}

// load reads and verifies the list at path, and judges it by the policy.
func (j judge) load(path string, maxSize int64) (*blocklist.List, error) {
	l, err := blocklist.Load(path, j.keys, maxSize)
	if err != nil {
		return nil, err
	}
	if j.policy != nil {
		if err := j.policy.Judge(l.Name, l.Issuer, l.Signers); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		j.policy.Grant(l)
	}
	return l, nil
}

// satisfied says which line of the policy a list met, and with which keys.
func (j judge) satisfied(l *blocklist.List) string {
	ids := make([]string, len(l.Signers))
	for i, k := range l.Signers {
		ids[i] = fmt.Sprintf("%X", k.ID())
	}
	if j.policy == nil {
		return "by key " + strings.Join(ids, ", ")
	}
	r := j.policy.RuleFor(l.Name)
	var on []string
	for _, k := range r.Keys {
		if slices.ContainsFunc(l.Signers, func(s minisign.PublicKey) bool { return minisig.SameKey(s, k) }) {
			on = append(on, fmt.Sprintf("%X", k.ID()))
		}
	}
	return fmt.Sprintf("by key %s: %d of %d needed by line %d (list %s) of trust policy serial %d",
		strings.Join(on, ", "), len(on), r.Threshold, r.Line, r.Pattern, j.policy.Serial)
}
