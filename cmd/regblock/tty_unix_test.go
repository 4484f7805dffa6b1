//go:build unix

package main

import "syscall"

// detachTTY starts a process in a new session, without a controlling
// terminal, as under cron or CI.
func detachTTY() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
