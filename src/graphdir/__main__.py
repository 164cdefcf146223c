from graphdir.cli import main

main()
