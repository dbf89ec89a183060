from archc.cli.app import entry

entry()
