from reynolds.cli import main

main()
