package trust

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// line returns a key as a policy writes it.
func line(k *blocklisttest.Key) string {
	text, _ := k.Public.MarshalText()
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	return lines[len(lines)-1]
}

// reID returns k's key as a policy writes it, under the ID of other.
func reID(k, other *blocklisttest.Key) string {
	return blocklisttest.WithID(k.Public, other.Public.ID()).String()
}

func policy(serial int, body string) string {
	return fmt.Sprintf("#! regblock-trust 1\n#! serial: %d\n#! issued: 2026-12-01T00:00:00Z\n%s", serial, body)
}

func sign(data string, keys ...*blocklisttest.Key) []byte {
	var sig []byte
	for _, k := range keys {
		sig = append(sig, k.Sign([]byte(data))...)
	}
	return sig
}

func TestParseErrors(t *testing.T) {
	a, b := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	root := "root 1 " + line(a) + "\n"
	for _, tc := range []struct {
		name, text string
		line       int
		msg        string
	}{
		{"not a policy", "#! regblock-list 1\n", 1, "not a regblock trust policy"},
		{"unknown header", policy(1, "#! name: x\n"+root), 4, `unknown header key "name"`},
		{"no serial", "#! regblock-trust 1\n#! issued: 2026-12-01T00:00:00Z\n" + root, 1, `missing required header "serial"`},
		{"no root", policy(1, "list a 1 "+line(a)+"\n"), 0, "no root line"},
		{"two roots", policy(1, root+root), 5, "a second root line"},
		{"root locked out", policy(1, "root 3 "+line(a)+" "+line(b)+"\n"), 4, "threshold 3, but only 2 keys"},
		{"threshold zero", policy(1, "root 0 "+line(a)+"\n"), 4, "not a whole number from 1"},
		{"key twice", policy(1, "root 1 "+line(a)+" "+line(a)+"\n"), 4, "given twice"},
		{"not a key", policy(1, "root 1 RWQnotakey\n"), 4, "not a minisign public key"},
		{"bad pattern", policy(1, root+"list a*b 1 "+line(a)+"\n"), 5, "'*' may only end a pattern"},
		{"hostile pattern", policy(1, root+"list .. 1 "+line(a)+"\n"), 5, "not a list name"},
		{"pattern twice", policy(1, root+"list a 1 "+line(a)+"\nlist a 1 "+line(b)+"\n"), 6, "already given on line 5"},
		{"list locked out", policy(1, root+"list a 2 "+line(a)+"\n"), 5, "could never be met"},
		{"unknown line", policy(1, root+"delegate a 1 "+line(a)+"\n"), 5, `unknown line "delegate"`},
		{"one ID, two keys", policy(1, root+"list a 1 "+line(b)+"\nlist b 1 "+reID(b, a)+"\n"), 6,
			"line 4 and line 6 give two different public keys the same key ID"},
		{"one key, two IDs", policy(1, root+"list a 1 "+line(b)+"\nlist b 1 "+reID(a, blocklisttest.NewKey(t))+"\n"), 6,
			"line 4 and line 6 give one public key under two key IDs"},
		{"one key, two IDs on a line", policy(1, root+"list a 2 "+line(b)+" "+reID(b, a)+"\n"), 5, "given again under key ID"},
	} {
		_, err := Parse("p.trust", []byte(tc.text))
		var errs blocklist.ErrorList
		if !errors.As(err, &errs) || errs[0].Line != tc.line || !strings.Contains(errs[0].Msg, tc.msg) {
			t.Errorf("%s: %v; want line %d: %q", tc.name, err, tc.line, tc.msg)
		}
	}
}

func TestRuleFor(t *testing.T) {
	a, b, c, d := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	p, err := Parse("p.trust", []byte(policy(1, "root 1 "+line(a)+`
list mcmc-csam 1 `+line(a)+" "+line(b)+`
list court-* 2 `+line(b)+" "+line(c)+" "+line(d)+`
list court-high-* 1 `+line(d)+`
list * 1 `+line(c)+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pattern string
	}{{"mcmc-csam", "mcmc-csam"}, {"court-7", "court-*"}, {"court-high-1", "court-high-*"}, {"other", "*"}, {"mcmc-csam2", "*"}} {
		if r := p.RuleFor(tc.name); r == nil || r.Pattern != tc.pattern {
			t.Errorf("RuleFor(%q) = %v, want %s", tc.name, r, tc.pattern)
		}
	}
	id := func(k *blocklisttest.Key) minisign.PublicKey { return k.Public }
	for _, tc := range []struct {
		name    string
		signers []minisign.PublicKey
		err     error
	}{
		{"mcmc-csam", []minisign.PublicKey{id(b)}, nil},
		{"mcmc-csam", []minisign.PublicKey{id(c), id(d)}, ErrThreshold},
		{"court-1", []minisign.PublicKey{id(b), id(d)}, nil},
		{"court-1", []minisign.PublicKey{id(b), id(a)}, ErrThreshold},
		{"court-1", []minisign.PublicKey{id(b), id(b)}, ErrThreshold}, // one key counts once
	} {
		if err := p.Judge(tc.name, "", tc.signers); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Judge(%s, %X) = %v, want %v", tc.name, tc.signers, err, tc.err)
		}
	}
	p.Lists = p.Lists[:3] // without the catch-all
	if err := p.Judge("other", "", []minisign.PublicKey{id(a)}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("a list no line names: %v, want untrusted", err)
	}
}

// TestRootRotation rotates the root keys of a policy in three steps, each
// signed by the threshold of the root in force and of its own: a policy
// signed by the old root alone, or by the new alone, is refused.
func TestRootRotation(t *testing.T) {
	r1, r2, r3, r4 := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	pinned := []minisign.PublicKey{r1.Public, r2.Public}

	v1 := policy(1, "root 2 "+line(r1)+" "+line(r2)+"\n")
	if _, _, err := Open("p.trust", []byte(v1), sign(v1, r1), nil, pinned); !errors.Is(err, ErrThreshold) {
		t.Errorf("first policy with one of two pinned signatures: %v, want threshold", err)
	}
	p1, _, err := Open("p.trust", []byte(v1), sign(v1, r1, r2), nil, pinned)
	if err != nil {
		t.Fatal(err)
	}
	// Step 1: add r3 (2 of 3).
	v2 := policy(2, "root 2 "+line(r1)+" "+line(r2)+" "+line(r3)+"\n")
	if _, _, err := Open("p.trust", []byte(v2), sign(v2, r1, r3), p1, pinned); !errors.Is(err, ErrThreshold) {
		t.Errorf("v2 signed by r1 and r3 only (one key of the root in force): %v, want threshold", err)
	}
	p2, _, err := Open("p.trust", []byte(v2), sign(v2, r1, r2), p1, pinned)
	if err != nil {
		t.Fatal(err)
	}
	// Step 2: drop r1, add r4.
	v3 := policy(3, "root 2 "+line(r2)+" "+line(r3)+" "+line(r4)+"\n")
	p3, _, err := Open("p.trust", []byte(v3), sign(v3, r2, r3), p2, pinned)
	if err != nil {
		t.Fatal(err)
	}
	// Step 3: r1 (and r2) can no longer sign.
	v4 := policy(4, "root 1 "+line(r3)+"\n")
	if _, _, err := Open("p.trust", []byte(v4), sign(v4, r1, r2), p3, pinned); err == nil {
		t.Error("v4 signed by retired root keys was accepted")
	}
	if _, _, err := Open("p.trust", []byte(v4), sign(v4, r3, r4), p3, pinned); err != nil {
		t.Errorf("v4 signed by r3 and r4: %v", err)
	}
	// Rollback and unchanged.
	if _, _, err := Open("p.trust", []byte(v2), sign(v2, r1, r2), p3, pinned); !errors.Is(err, ErrRollback) {
		t.Errorf("v2 after v3: %v, want rollback", err)
	}
	if _, unchanged, err := Open("p.trust", []byte(v3), sign(v3, r2, r3), p3, pinned); !unchanged || err != nil {
		t.Errorf("v3 again: unchanged %v, %v", unchanged, err)
	}
	// A saved copy opens on its own root.
	if _, err := OpenSaved("p.trust", []byte(v3), sign(v3, r3, r4)); err != nil {
		t.Errorf("saved v3: %v", err)
	}
	if _, err := OpenSaved("p.trust", []byte(v3), bytes.Join([][]byte{sign(v3, r3), []byte("junk\n")}, nil)); !errors.Is(err, ErrThreshold) {
		t.Errorf("saved v3 with one root signature: %v, want threshold", err)
	}
}

// TestCountByPublicKey: a rule counts public keys, whatever IDs they are
// written under, and a new root may not reuse an ID of a root in force.
func TestCountByPublicKey(t *testing.T) {
	a, b := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	alias := blocklisttest.WithID(a.Public, b.Public.ID())
	r := Rule{Threshold: 2, Keys: []minisign.PublicKey{a.Public, alias}}
	if n := r.Count([]minisign.PublicKey{a.Public, alias}); n != 1 {
		t.Errorf("one key under two IDs counted %d times", n)
	}
	if n := (Rule{Keys: []minisign.PublicKey{a.Public, b.Public}}).Count([]minisign.PublicKey{b.Public, alias}); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}

	v1 := policy(1, "root 1 "+line(a)+"\n")
	inForce, _, err := Open("p.trust", []byte(v1), sign(v1, a), nil, []minisign.PublicKey{a.Public})
	if err != nil {
		t.Fatal(err)
	}
	// The next root, b's key under a's ID, signed by a and by b (its
	// signature under a's ID too): refused before any signature counts.
	v2 := policy(2, "root 1 "+blocklisttest.WithID(b.Public, a.Public.ID()).String()+"\n")
	sig := append(sign(v2, a), blocklisttest.ReID(sign(v2, b), a.Public.ID())...)
	if _, _, err := Open("p.trust", []byte(v2), sig, inForce, nil); err == nil || !strings.Contains(err.Error(), "the same key ID") {
		t.Errorf("a root reusing the ID of the root in force: %v", err)
	}
}

// TestFirstPolicyNeedsPinnedMajority: one of three pinned root keys cannot
// bring in a first policy that says "root 1" with itself, and so cannot
// lock the others out.
func TestFirstPolicyNeedsPinnedMajority(t *testing.T) {
	a, b, c, police := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	pinned := []minisign.PublicKey{a.Public, b.Public, c.Public}
	evil := policy(99, "root 1 "+line(a)+"\nlist * 1 "+line(police)+"\n")
	if _, _, err := Open("p.trust", []byte(evil), sign(evil, a), nil, pinned); !errors.Is(err, ErrThreshold) || !strings.Contains(err.Error(), "a majority of the 3 pinned") {
		t.Errorf("a first policy of root 1 signed by one of three pinned keys: %v", err)
	}
	if _, _, err := Open("p.trust", []byte(evil), sign(evil, a, b), nil, pinned); err != nil {
		t.Errorf("signed by two of three: %v", err)
	}
	one := policy(1, "root 1 "+line(a)+"\n")
	if _, _, err := Open("p.trust", []byte(one), sign(one, a), nil, pinned[:1]); err != nil {
		t.Errorf("one pinned key, one signature: %v", err)
	}
}

// TestIssuerGranted: a list line may grant an issuer, quoted at its end; a
// list claiming another is untrusted, and lint warns of lines that grant
// none.
func TestIssuerGranted(t *testing.T) {
	a, b := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	p, err := Parse("p.trust", []byte(policy(1, "root 1 "+line(a)+"\n"+
		`list mcmc-csam 1 `+line(a)+` "Malaysian Communications and Multimedia Commission"  # the regulator`+"\n"+
		"list court-* 1 "+line(b)+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	signers := []minisign.PublicKey{a.Public}
	if err := p.Judge("mcmc-csam", "Malaysian Communications and Multimedia Commission", signers); err != nil {
		t.Errorf("the granted issuer: %v", err)
	}
	if err := p.Judge("mcmc-csam", "High Court of Malaya", signers); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "grants") {
		t.Errorf("another issuer: %v", err)
	}
	if err := p.Judge("mcmc-csam", "", signers); err != nil {
		t.Errorf("a list that claims no issuer: %v", err)
	}
	l := &blocklist.List{Header: blocklist.Header{Name: "mcmc-csam"}}
	if p.Grant(l); l.Issuer != "Malaysian Communications and Multimedia Commission" {
		t.Errorf("granted issuer %q", l.Issuer)
	}
	if err := p.Judge("court-1", "anything at all", []minisign.PublicKey{b.Public}); err != nil {
		t.Errorf("a line that grants no issuer: %v", err)
	}
	if ws := p.Warnings(); len(ws) != 1 || ws[0].Line != 6 || !strings.Contains(ws[0].Msg, "court-* grants no issuer") {
		t.Errorf("warnings %+v", ws)
	}
	// Look-alikes and one issuer on two lines are warned of.
	w, err := Parse("p.trust", []byte(policy(1, "root 1 "+line(a)+"\nlist a 1 "+line(a)+` "Example Regulator"`+"\nlist b 1 "+line(b)+" \"Example\u200bRegulator\"\nlist c 1 "+line(b)+` "Example Regulator"`+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	if ws := w.Warnings(); len(ws) != 2 || !strings.Contains(ws[0].Msg, "invisible") || ws[1].Line != 7 || !strings.Contains(ws[1].Msg, "issuer of line 5") {
		t.Errorf("warnings %+v", ws)
	}
	// A quote in a comment is no issuer.
	c, err := Parse("p.trust", []byte(policy(1, "root 1 "+line(a)+"\nlist pdrm-* 1 "+line(b)+` # was "Malaysian Communications and Multimedia Commission"`+"\n")))
	if err != nil || c.Lists[0].Issuer != "" {
		t.Errorf("a quote in a comment: %v, issuer %q", err, c.Lists[0].Issuer)
	}
	for _, tc := range []struct{ text, msg string }{
		{`list x 1 ` + line(a) + ` "Unclosed`, "closing quote"},
		{`list x 1 ` + line(a) + ` "Regulator" extra`, "the issuer ends the line"},
		{`list x 1 ` + line(a) + ` ""`, "the issuer is empty"},
		{`root 1 ` + line(a) + ` "Regulator"`, "only a list line names an issuer"},
	} {
		_, err := Parse("p.trust", []byte(policy(1, "root 1 "+line(a)+"\n"+tc.text+"\n")))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.msg)
		}
	}
}

// TestWalk: a history directory is walked from the pinned keys in serial
// order; a version refused stops the walk, and the one before it stands;
// a file whose serial is not its name's is refused.
func TestWalk(t *testing.T) {
	a, b := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	dir := t.TempDir()
	write := func(name, text string, keys ...*blocklisttest.Key) {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
		os.WriteFile(filepath.Join(dir, name+".minisig"), sign(text, keys...), 0o644)
	}
	write("1.trust", policy(1, "root 1 "+line(a)+"\n"), a)
	write("2.trust", policy(2, "root 1 "+line(b)+"\n"), a, b)
	write("notes.txt", "not a version", a)
	p, unchanged, err := Walk(dir, nil, []minisign.PublicKey{a.Public})
	if err != nil || unchanged || p.Serial != 2 {
		t.Fatalf("Walk: %v, %v, %v; want serial 2", p, unchanged, err)
	}
	// Pinned to today's root, the walk passes by the version only the
	// retired root signed; pinned to a stranger, it takes nothing.
	if q, _, err := Walk(dir, nil, []minisign.PublicKey{b.Public}); err != nil || q.Serial != 2 {
		t.Errorf("Walk pinned to the second root: %v, %v; want serial 2", q, err)
	}
	if q, _, err := Walk(dir, nil, []minisign.PublicKey{blocklisttest.NewKey(t).Public}); !errors.Is(err, ErrThreshold) || q != nil {
		t.Errorf("Walk pinned to a stranger: %v, %v; want ErrThreshold", q, err)
	}
	if q, _, err := Walk(t.TempDir(), nil, []minisign.PublicKey{a.Public}); !errors.Is(err, ErrEmptyHistory) || q != nil {
		t.Errorf("Walk of an empty directory: %v, %v; want ErrEmptyHistory", q, err)
	}
	if again, unchanged, err := Walk(dir, p, []minisign.PublicKey{a.Public}); err != nil || !unchanged || again != p {
		t.Errorf("Walk again: %v, %v", unchanged, err)
	}
	write("3.trust", policy(3, "root 1 "+line(a)+"\n"), a) // by the retired root
	write("4.trust", policy(4, "root 1 "+line(b)+"\n"), b)
	if got, _, err := Walk(dir, p, nil); !errors.Is(err, ErrThreshold) || got != nil {
		t.Errorf("a refused third version: %v, %v; want no progress, ErrThreshold", got, err)
	}
	write("3.trust", policy(5, "root 1 "+line(b)+"\n"), b)
	if _, _, err := Walk(dir, p, nil); err == nil || !strings.Contains(err.Error(), "not 3") {
		t.Errorf("3.trust holding serial 5: %v", err)
	}
}
