/*
 * cli: the `ignis` subcommands, one file each (tmux's cmd table, reduced).
 * Client commands talk to a running server over its AWS APIs, signed with
 * the root credentials, exactly as the aws CLI would.
 */
#ifndef IGNIS_CLI_CLI_H
#define IGNIS_CLI_CLI_H

struct cli_command {
    const char *name;
    const char *usage;
    int (*run)(int argc, char **argv);
};

int cmd_serve(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_invoke(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_bill(int argc, char **argv);

#endif
