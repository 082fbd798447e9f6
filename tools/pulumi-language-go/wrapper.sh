#!/bin/sh
# pulumi-language-go, as the Pulumi CLI starts it (working directory = the project directory).
# The Go host built here (SDK v3.62) takes the `binary` runtime option only as a flag, while
# today's CLI sends options inside its Run request. chall-manager writes the binary of a prepared
# scenario to .cm-go-binary in the stack's project directory; pass it on the old way.
# Like every plugin chall-manager installs, it never passes the stacks' passphrase on to scenario
# code (see tools/plugin-env/wrapper.sh).
unset PULUMI_CONFIG_PASSPHRASE PULUMI_CONFIG_PASSPHRASE_FILE
binary=""
if [ -f .cm-go-binary ]; then binary=$(cat .cm-go-binary); fi
exec "@REAL_HOST@" ${binary:+-binary=$binary} "$@"
