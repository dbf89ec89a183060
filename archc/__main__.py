from archc.cli.main import entry

entry()
