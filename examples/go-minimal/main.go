// Scenario: no resources, outputs derived from the stack config that chall-manager sets.
// `identity` names the instance; `additional` (JSON object) may set `prefix` for the flag.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		// CM_PROJECT is the project namespace of the config chall-manager sets.
		cfg := config.New(ctx, os.Getenv("CM_PROJECT"))
		identity := cfg.Require("identity")
		additional := map[string]string{}
		_ = cfg.TryObject("additional", &additional)
		prefix := additional["prefix"]
		if prefix == "" {
			prefix = "CTF"
		}
		sum := sha256.Sum256([]byte("go-minimal:" + identity))
		ctx.Export("connection_info", pulumi.String("https://"+identity+".go-minimal.example"))
		ctx.Export("flag", pulumi.String(prefix+"{"+hex.EncodeToString(sum[:])[:24]+"}"))
		return nil
	})
}
