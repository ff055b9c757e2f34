from ortel_cli.main import app

app()
