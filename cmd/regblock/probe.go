package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

const probeUsage = `Usage: regblock probe URL

Exits 0 when URL answers 200 OK within 3 seconds, 1 otherwise: a health
check for images without curl, such as the regblock container image, whose
HEALTHCHECK asks CoreDNS's ready plugin.

Example:
  regblock probe http://127.0.0.1:8181/ready

`

func probe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("probe", probeUsage, stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() == 1, "want one URL; got " + gotArgs(fs)}); code >= 0 {
		return code
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(fs.Arg(0))
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(stderr, 1, fmt.Errorf("%s: %s", fs.Arg(0), resp.Status), "")
	}
	return 0
}
