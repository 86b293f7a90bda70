#!/usr/bin/python3
"""The calls bench/tasks/run.sh makes around tw-loadgen, through the stubs
the build generates (BUILD/e2e_stubs):

    bench_client.py STUBS ADDR signup             -> "USER_ID EMAIL PASSWORD"
    bench_client.py STUBS ADDR login EMAIL PASSWORD -> an access token
    bench_client.py STUBS ADDR count TOKEN        -> how many tasks the user has
    bench_client.py STUBS ADDR token-at TOKEN N   -> a ListTasks page token N tasks in
    bench_client.py STUBS ADDR task-id TOKEN      -> the id of the user's first task
    bench_client.py STUBS ADDR tokens N           -> access tokens of N new users, one a line
"""
import secrets
import sys


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    stubs, address, command, args = argv[1], argv[2], argv[3], argv[4:]
    sys.path.insert(0, stubs)
    import grpc
    from tw.v1 import auth_service_pb2 as A, auth_service_pb2_grpc
    from tw.v1 import task_service_pb2 as T, task_service_pb2_grpc
    channel = grpc.insecure_channel(address)
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    tasks = task_service_pb2_grpc.TaskServiceStub(channel)
    def register():
        email = f"bench-{secrets.token_hex(6)}@example.com"
        password = "bench-" + secrets.token_urlsafe(16)
        reply = auth.Register(A.RegisterRequest(email=email, password=password,
                                                display_name="Bench"), timeout=30)
        return reply, email, password

    if command == "signup":
        reply, email, password = register()
        print(reply.user.id, email, password)
    elif command == "tokens":
        for _ in range(int(args[0])):
            print(register()[0].tokens.access_token)
    elif command == "task-id":
        reply = tasks.ListTasks(T.ListTasksRequest(page_size=1),
                                metadata=[("authorization", "Bearer " + args[0])], timeout=60)
        print(reply.tasks[0].id)
    elif command == "login":
        reply = auth.Login(A.LoginRequest(email=args[0], password=args[1]), timeout=30)
        print(reply.tokens.access_token)
    elif command in ("count", "token-at"):
        metadata = [("authorization", "Bearer " + args[0])]
        stop = int(args[1]) if command == "token-at" else None
        seen, token = 0, ""
        while stop is None or seen < stop:
            reply = tasks.ListTasks(T.ListTasksRequest(page_size=500, page_token=token),
                                    metadata=metadata, timeout=60)
            seen += len(reply.tasks)
            token = reply.next_page_token
            if not token:
                break
        print(seen if command == "count" else token)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
