-- wrk script: POST /login with a wrong password, as fast as the gateway answers.
wrk.method = "POST"
wrk.body = "username=bench&password=not-the-password"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
