package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/synapse-p2p/synapse-p2p/node"
)

// apiClient talks to a running daemon's REST API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// apiFlags adds --api and --token to a client command.
func apiFlags(fs *flag.FlagSet) (api, token *string) {
	def := os.Getenv(node.EnvPrefix + "API")
	if def == "" {
		def = "127.0.0.1:8000"
	}
	api = fs.String("api", def, "the daemon's API address (env SYNAPSE_API)")
	token = fs.String("token", os.Getenv(node.EnvPrefix+"API_TOKEN"), "bearer token (env SYNAPSE_API_TOKEN)")
	return api, token
}

func newClient(api, token string) *apiClient {
	base := api
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	return &apiClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 5 * time.Minute}}
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status) }

// do sends a request and decodes a JSON answer into out (if non-nil).
func (c *apiClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon's API at %s (is synapse-p2p daemon running? --api sets the address): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, out)
}

func (c *apiClient) postJSON(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, http.MethodPost, path, "application/json", body, out)
}

// printJSON prints an API answer indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// simpleGet is a client command that GETs one path and prints the answer.
func simpleGet(name, path string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlags(name, "[--api ADDR]", stderr)
		api, token := apiFlags(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q", fs.Arg(0))
		}
		var raw json.RawMessage
		if err := newClient(*api, *token).do(ctx, http.MethodGet, path, "", nil, &raw); err != nil {
			return err
		}
		return printJSON(stdout, raw)
	}
}

// idCommand is a client command that takes one proposal ID.
func idCommand(name, argsUsage string, run func(ctx context.Context, c *apiClient, id string, rest []string) (json.RawMessage, error)) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlags(name, argsUsage+" [--api ADDR]", stderr)
		api, token := apiFlags(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() < 1 {
			return usagef("missing proposal ID")
		}
		raw, err := run(ctx, newClient(*api, *token), fs.Arg(0), fs.Args()[1:])
		if err != nil {
			return err
		}
		return printJSON(stdout, raw)
	}
}
