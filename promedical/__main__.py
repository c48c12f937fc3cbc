from promedical.cli.main import main

main()
