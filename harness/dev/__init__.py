"""`kubesolo-harness dev`: an interactive KubeSolo OS VM for someone changing
the OS (docs/architecture.md "Developer tools")."""
