#!/bin/sh
# @NAME@, as the Pulumi CLI starts it. The CLI needs PULUMI_CONFIG_PASSPHRASE to encrypt and
# decrypt the stacks' secrets, and hands its whole environment to the plugins it starts. Language
# hosts and the dynamic-resource provider run scenario code, which must not read the passphrase:
# it is dropped here, before that code starts.
unset PULUMI_CONFIG_PASSPHRASE PULUMI_CONFIG_PASSPHRASE_FILE
exec "@REAL@" "$@"
