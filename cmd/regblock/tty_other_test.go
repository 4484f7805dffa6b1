//go:build !unix

package main

import "syscall"

// detachTTY has nothing to detach from where there are no sessions.
func detachTTY() *syscall.SysProcAttr { return nil }
