package regblock

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
)

const pluginName = "regblock"

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

// config is the plugin's Corefile block.
type config struct {
	lists   []string // list files and directories of lists
	keys    []minisign.PublicKey
	notice  []netip.Addr // empty: answer NXDOMAIN
	ttl     uint32
	maxSize int64  // bytes
	state   string // "" when not kept
	trust   string // the trust policy file, "" for none: keys then are its pinned root keys

	audit       string // audit log file, "" for none
	auditClient clientMode
	auditBudget int // block events written an hour, 0 for no limit
	receipts    receiptsConfig

	encryptedDNSCanaries bool
}

// defaultAuditBudget bounds the block events the audit log takes an hour:
// about 20 MB an hour, whatever a flood of blocked queries does.
const defaultAuditBudget = 100_000

func newConfig() config {
	return config{ttl: 60, maxSize: 1 << 30, auditBudget: defaultAuditBudget}
}

func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	// Only reserved here: the lists are read on startup, once every
	// directive of the Corefile is set up, so that a reload that fails
	// leaves no trace (ledger, state, metrics, receipts).
	registerCommit()
	rb, err := reserveRegblock(cfg)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	c.OnStartup(func() error {
		if err := rb.lists.load(); err != nil {
			return plugin.Error(pluginName, err)
		}
		return rb.lists.watch()
	})
	c.OnShutdown(rb.shutdown)
	watchRestart()
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		rb.Next = next
		return rb
	})
	return nil
}

func parse(c *caddy.Controller) (config, error) {
	cfg := newConfig()
	root := dnsserver.GetConfig(c).Root
	var keyFiles []string // the pubkey files, beside cfg.keys
	i := 0
	for c.Next() {
		if i > 0 {
			return cfg, plugin.ErrOnce
		}
		i++
		if len(c.RemainingArgs()) != 0 {
			return cfg, c.Errf("regblock takes no arguments, only a block of options")
		}
		for c.NextBlock() {
			option := c.Val()
			args := c.RemainingArgs()
			if option == "encrypted_dns_canaries" {
				if len(args) != 0 {
					return cfg, c.Errf("encrypted_dns_canaries takes no value")
				}
				cfg.encryptedDNSCanaries = true
				continue
			}
			if len(args) == 0 {
				return cfg, c.ArgErr()
			}
			switch option {
			case "lists":
				for _, path := range args {
					path = resolve(root, path)
					if _, err := os.Stat(path); err != nil {
						return cfg, c.Errf("lists: %v", err)
					}
					cfg.lists = append(cfg.lists, path)
				}
			case "pubkey":
				for _, path := range args {
					path = resolve(root, path)
					key, err := minisig.ReadPublicKey(path)
					if err != nil {
						return cfg, c.Errf("pubkey: %v", strings.TrimPrefix(err.Error(), "public key: "))
					}
					cfg.keys = append(cfg.keys, key)
					keyFiles = append(keyFiles, path)
				}
				if err := minisig.CheckKeys(cfg.keys, keyFiles); err != nil {
					return cfg, c.Errf("pubkey: %v", err)
				}
			case "notice":
				for _, arg := range args {
					addr, err := blocklist.ParseNoticeAddr(arg)
					if err != nil {
						return cfg, c.Errf("notice %v", err)
					}
					cfg.notice = append(cfg.notice, addr)
				}
			case "ttl":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				ttl, err := strconv.ParseUint(args[0], 10, 32)
				if err != nil || ttl > 1<<31-1 {
					return cfg, c.Errf("ttl %q is not a number of seconds from 0 to 2147483647", args[0])
				}
				cfg.ttl = uint32(ttl)
			case "max_size":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				size, err := parseSize(args[0])
				if err != nil {
					return cfg, c.Errf("max_size %q: %v", args[0], err)
				}
				cfg.maxSize = size
			case "state":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				dir := resolve(root, args[0])
				if err := os.MkdirAll(dir, 0o750); err != nil {
					return cfg, c.Errf("state: %v", err)
				}
				cfg.state = dir
			case "trust":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				path := resolve(root, args[0])
				if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
					return cfg, c.Errf("trust %q: its directory does not exist", args[0])
				}
				cfg.trust = path
			case "audit":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				cfg.audit = resolve(root, args[0])
			case "receipts":
				if len(args) < 2 || len(args) > 3 {
					return cfg, c.Errf("receipts: want URL KEY [ID]")
				}
				every := cfg.receipts.every
				r, err := parseReceipts(args, resolve(root, args[1]))
				if err != nil {
					return cfg, c.Errf("%v", err)
				}
				if every > 0 {
					r.every = every
				}
				cfg.receipts = r
			case "receipts_every":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				d, err := time.ParseDuration(args[0])
				if err != nil || d < time.Second {
					return cfg, c.Errf("receipts_every %q: want a duration of at least 1s, such as 1m", args[0])
				}
				cfg.receipts.every = d
			case "audit_budget":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				n, err := strconv.ParseUint(args[0], 10, 31)
				if err != nil {
					return cfg, c.Errf("audit_budget %q is not a number of block events an hour (0: no limit)", args[0])
				}
				cfg.auditBudget = int(n)
			case "audit_client":
				if len(args) != 1 {
					return cfg, c.ArgErr()
				}
				mode, ok := map[string]clientMode{"none": clientNone, "truncate": clientTruncate, "full": clientFull}[args[0]]
				if !ok {
					return cfg, c.Errf("audit_client %q: want none, truncate or full", args[0])
				}
				cfg.auditClient = mode
			default:
				return cfg, c.Errf("unknown property %q", option)
			}
		}
	}
	if len(cfg.lists) == 0 {
		return cfg, c.Errf("no lists: name the list files or directories with 'lists PATH...'")
	}
	if len(cfg.keys) == 0 {
		return cfg, c.Errf("no public key: name the trusted keys with 'pubkey FILE...'")
	}
	for _, path := range cfg.lists {
		if cfg.state != "" && filepath.Clean(path) == filepath.Clean(cfg.state) {
			return cfg, c.Errf("state %q is also a lists directory: keep the saved copies apart", path)
		}
	}
	if cfg.trust != "" && cfg.state == "" {
		return cfg, c.Errf("trust without state: the state directory keeps the policy in force, without it a restart would go back to an older policy; add 'state DIR'")
	}
	if cfg.receipts.url == "" && cfg.receipts.every != 0 {
		return cfg, c.Errf("receipts_every without receipts: name where to send them with 'receipts URL KEY [ID]'")
	}
	return cfg, nil
}

// resolve makes a relative path relative to the Corefile's root directive.
func resolve(root, path string) string {
	if filepath.IsAbs(path) || root == "" {
		return path
	}
	return filepath.Join(root, path)
}

// parseSize reads a byte count with an optional K, M or G suffix (powers of
// 1024).
func parseSize(s string) (int64, error) {
	shift := 0
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	}
	digits := s
	if shift > 0 {
		digits = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("want a positive number of bytes, with an optional K, M or G suffix")
	}
	return n << shift, nil
}
