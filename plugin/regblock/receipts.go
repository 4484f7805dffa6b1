package regblock

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// receiptsConfig is the receipts option: where to send receipts, as whom,
// signed with which key, and how often at least.
type receiptsConfig struct {
	url     string // "" when receipts are off
	keyPath string
	key     minisign.PrivateKey
	id      string
	every   time.Duration
}

// String identifies the configuration among the shared lists' keys.
func (c receiptsConfig) String() string {
	return fmt.Sprintf("%s %s %s %v", c.url, c.keyPath, c.id, c.every)
}

// parseReceipts parses "receipts URL KEY [ID]": URL is https, or http to a
// loopback address; KEY a minisign secret key, unencrypted or with its
// password in $REGBLOCK_PASSWORD; ID defaults to the host name.
func parseReceipts(args []string, keyPath string) (receiptsConfig, error) {
	c := receiptsConfig{url: args[0], keyPath: keyPath, every: time.Minute}
	u, err := url.Parse(c.url)
	if err != nil || u.Host == "" {
		return c, fmt.Errorf("receipts: %q is not a URL", args[0])
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return c, fmt.Errorf("receipts: %q: use https (plain http only to a loopback address)", args[0])
	}
	c.key, err = minisig.ReadSecretKey(keyPath, func() (string, error) {
		pw, ok := os.LookupEnv("REGBLOCK_PASSWORD")
		if !ok {
			return "", fmt.Errorf("receipts: %s is encrypted: give its password in $REGBLOCK_PASSWORD", keyPath)
		}
		return pw, nil
	})
	if err != nil {
		return c, fmt.Errorf("receipts: %v", err)
	}
	if len(args) > 2 {
		c.id = args[2]
	} else if c.id, err = os.Hostname(); err != nil {
		return c, fmt.Errorf("receipts: no resolver name given, and the host name is unknown: %v", err)
	}
	if err := receipt.CheckResolverName(c.id); err != nil {
		return c, fmt.Errorf("receipts: %v", err)
	}
	return c, nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// receiptSender sends a signed receipt after each ledger event and at
// least every cfg.every, off the query path. Each receipt says all that is
// in force, so only the newest matters: one waits at most, rebuilt at each
// attempt, and a failed send is retried with back-off (1 s doubling to 5
// minutes, with jitter) until one gets through.
type receiptSender struct {
	cfg    receiptsConfig
	build  func() receipt.Receipt
	client *http.Client
	pokes  chan struct{}
	done   chan struct{}
	quit   chan struct{}
}

func startReceipts(cfg receiptsConfig, build func() receipt.Receipt) *receiptSender {
	// No redirect is followed: it would carry the receipt and its
	// signature to wherever the answer points (plain http, another host).
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		return fmt.Errorf("redirected to %s: receipts follow no redirect; give the receiver's own URL", req.URL.Redacted())
	}}
	s := &receiptSender{cfg: cfg, build: build, client: client,
		pokes: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{})}
	s.poke() // the first receipt: what is in force at startup
	go s.run()
	return s
}

// poke asks for a receipt to be sent soon; it never blocks.
func (s *receiptSender) poke() {
	select {
	case s.pokes <- struct{}{}:
	default:
	}
}

func (s *receiptSender) stop() {
	close(s.quit)
	<-s.done
}

func (s *receiptSender) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.every)
	defer tick.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-s.pokes:
		case <-tick.C:
		}
		for wait := time.Second; ; wait = min(2*wait, 5*time.Minute) {
			err := s.send()
			if err == nil {
				receiptsSent.WithLabelValues("sent").Inc()
				receiptLastSent.SetToCurrentTime()
				break
			}
			receiptsSent.WithLabelValues("failed").Inc()
			d := time.Duration(float64(wait) * (0.5 + rand.Float64()))
			log.Warningf("Receipt to %s not sent: %v; retrying in %v", s.cfg.url, err, d.Round(time.Millisecond))
			select {
			case <-s.quit:
				return
			case <-time.After(d):
			}
		}
	}
}

// send builds, signs and posts the current receipt.
func (s *receiptSender) send() error {
	r := s.build()
	r.Resolver, r.Time = s.cfg.id, time.Now().UTC().Truncate(time.Millisecond)
	body, sig, err := receipt.Sign(r, s.cfg.key)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, s.cfg.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(receipt.SignatureHeader, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
