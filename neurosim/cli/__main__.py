from neurosim.cli.main import main

main()
